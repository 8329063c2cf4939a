// Fails when src/schema.d.ts is not what openapi-typescript makes of
// openapi/cubby.json today: the client stays in step with the API.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

const root = new URL("../", import.meta.url);
const spec = new URL("../../openapi/cubby.json", root);
const fresh = astToString(await openapiTS(JSON.parse(await readFile(spec, "utf8"))));
const checkedIn = await readFile(new URL("src/schema.d.ts", root), "utf8");
const normalize = (text) => text.replace(/^\/\*\*[\s\S]*?\*\/\n\n/, "").trim();
if (normalize(fresh) !== normalize(checkedIn)) {
  console.error(
    `src/schema.d.ts is stale: run \`npm run generate\` in ${fileURLToPath(root)} and commit the result`,
  );
  process.exit(1);
}
console.log("src/schema.d.ts matches openapi/cubby.json");
