// check-dockerfile.mjs DOCKERFILE — the image's Dockerfile through
// dockerfile-utils' linter (the Dockerfile language server's validator;
// any diagnostic, warning or error, fails), then the image's promises,
// read from the parsed instructions (dockerfile-ast):
//   - multi-stage: a build stage and a final stage, both FROM debian:12-slim;
//   - the final stage runs as a numeric non-root USER (uid:gid, not 0);
//   - ENTRYPOINT ["revstream", "worker"] in exec form;
//   - the state directory /var/lib/revstream is a VOLUME;
//   - every apt-get install uses --no-install-recommends and the same RUN
//     removes /var/lib/apt/lists.
// Prints one line per problem; exit 1 if any.
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { validate } = require("dockerfile-utils");
const { DockerfileParser } = require("dockerfile-ast");

const file = process.argv[2];
const text = fs.readFileSync(file, "utf8");
const problems = [];
for (const d of validate(text))
  problems.push(`${file}:${d.range.start.line + 1}: dockerfile-utils: ${d.message}`);

const df = DockerfileParser.parse(text);
const froms = df.getFROMs();
if (froms.length < 2) problems.push(`${file}: not multi-stage (${froms.length} FROM)`);
for (const f of froms)
  if (f.getImage() !== "debian:12-slim")
    problems.push(`${file}:${f.getRange().start.line + 1}: FROM ${f.getImage()}, not debian:12-slim`);
const finalStart = froms.length ? froms[froms.length - 1].getRange().start.line : 0;
const final = df.getInstructions().filter((i) => i.getRange().start.line >= finalStart);
const last = (kw) => final.filter((i) => i.getKeyword() === kw).pop();
const user = last("USER");
const who = user ? user.getArgumentsContent() : "";
if (!/^[1-9][0-9]*(:[1-9][0-9]*)?$/.test(who))
  problems.push(`${file}: the final stage's USER is "${who}", not a numeric non-root uid[:gid]`);
const ep = last("ENTRYPOINT");
let epArgs = null;
try {
  epArgs = ep ? JSON.parse(ep.getArgumentsContent()) : null;
} catch {
  epArgs = null;
}
if (JSON.stringify(epArgs) !== JSON.stringify(["revstream", "worker"]))
  problems.push(`${file}: ENTRYPOINT is not ["revstream", "worker"] in exec form`);
const vol = last("VOLUME");
if (!vol || !vol.getArgumentsContent().includes("/var/lib/revstream"))
  problems.push(`${file}: /var/lib/revstream is not a VOLUME`);
for (const r of df.getInstructions().filter((i) => i.getKeyword() === "RUN")) {
  const c = r.getArgumentsContent() || "";
  if (/apt-get install/.test(c) && (!/--no-install-recommends/.test(c) || !/rm -rf \/var\/lib\/apt\/lists/.test(c)))
    problems.push(`${file}:${r.getRange().start.line + 1}: apt-get install without --no-install-recommends or without removing /var/lib/apt/lists`);
}
for (const p of problems) console.log(p);
console.log(`check-dockerfile: ${problems.length ? `${problems.length} problem(s)` : "no problem"}`);
process.exit(problems.length ? 1 : 0);
