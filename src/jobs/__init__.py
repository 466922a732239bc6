"""Job watchers: rules on SLURM jobs that tail output, match, decide and act.

Where things are (pure logic first, then I/O, then the actors):

- ``definition`` the YAML format and its validation; ``embedded`` blocks in
  sbatch scripts; ``patterns`` RE2 matching; ``condition`` the expression
  language; ``substitute`` placeholders;
- ``tail`` read positions, partial and long lines, truncation/replacement;
  ``state`` the watchers folded from the event log; ``decide`` what a match,
  a timer, a job's end or a manual trigger does; ``execute`` running a batch
  of actions with retries;
- ``slurm`` argv builders and parsers; ``transport`` local subprocess or
  asyncssh; ``ioloop`` the asyncio thread; ``actions`` what each action does;
  ``config`` ``pivot.toml``;
- ``tailer`` one poll cycle over every host; ``actors`` the JobTailer and
  ActionExecutor; ``runtime`` :func:`pivot.jobs.runtime.start_watchers`, the
  API ``pivot watch`` hosts;
- ``manage``, ``dryrun``, ``joblist`` what the CLI commands do.
"""
