import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The built page ships inside the Python package (src/ui/static); the
// output must be byte-for-byte what this source builds to
// (tests/ui/test_ui_frontend_build.py), so no timestamps or absolute paths.
// PIVOT_UI_OUT lets that test build elsewhere.
export default defineConfig({
  plugins: [svelte()],
  base: "./",
  build: {
    outDir: process.env.PIVOT_UI_OUT || "../static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    reportCompressedSize: false,
  },
});
