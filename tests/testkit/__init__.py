"""The suite's shared test helpers, imported as ``testkit.<module>`` by every test folder.

Test modules never import one another; what two of them share lives here
(``pyproject.toml`` puts ``tests/`` on pytest's and the type checkers' path).

- ``require``: skip on a developer machine, fail with ``CI=true``, when a server is missing.
- ``slurm_cluster``, ``sshd_server``, ``pgserver``: the real SLURM, OpenSSH and
  PostgreSQL servers the suite starts on loopback.
- ``jobs_servers``: their fixtures (``slurm``, ``sshd``, ``job_dir``,
  ``make_config``, ``smtp`` with a loopback SMTP ``Mailbox``; ``store``, ``io``).
- ``watched_job``: a job the log has seen, its empty output file and its watchers.
- ``tmpfs_disk``: a tmpfs of a given size, to fill a disk harmlessly.
- ``jobs_e2e``: driving ``pivot watchers``/``pivot jobs`` end to end (``pivot``,
  ``Proc``, ``wait_for``, ``events_of``, ``job_state``).
- ``pipeline_project``: pipeline projects written to a temporary directory and run.
- ``watch_e2e``, ``watch_helpers``: ``pivot watch`` driven as a process (the ``watches``
  fixture closes them); actor test helpers.
- ``ui_server``: a running ``pivot ui`` and its HTTP/WebSocket clients.
- ``eventgen``: hypothesis strategies for every event type.

Scripts that tests start as processes (``tests/store/producer.py``,
``opener.py``, ``tests/projections/catchup_worker.py``) stay beside their tests.
"""
