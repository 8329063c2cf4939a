// The README's walkthrough through the typed client, against a live
// daemon: CUBBY_API, CUBBY_TOKEN and CUBBY_PROXY (host:port of its proxy)
// name it. The Rust test `crates/cubby/tests/typescript.rs` starts one and
// runs this; with CI=true a missing daemon fails instead of skipping.
import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";

import { CubbyError, createClient, unwrap } from "../src/index.js";

const { CUBBY_API: api, CUBBY_TOKEN: token, CUBBY_PROXY: proxy, CI } = process.env;
const missing = !api || !token || !proxy;
if (missing && (CI === "true" || CI === "1")) {
  throw new Error("CUBBY_API, CUBBY_TOKEN and CUBBY_PROXY must name a live daemon (CI=true forbids skipping)");
}

/** GET `url` through the daemon's proxy, as curl does with `*.localhost`. */
function viaProxy(url, headers = {}) {
  const target = new URL(url);
  const [host, port] = proxy.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, path: target.pathname + target.search, headers: { ...headers, Host: target.host } },
      (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

test("the walkthrough, typed", { skip: missing && "no daemon named (CUBBY_API, CUBBY_TOKEN, CUBBY_PROXY)" }, async () => {
  const cubby = createClient({ baseUrl: api, token });
  const project = await unwrap(cubby.POST("/api/v1/projects", { body: { name: "ts-acme" } }));
  assert.equal(project.default_access, "claim");

  const container = await unwrap(
    cubby.POST("/api/v1/projects/{id}/containers", {
      params: { path: { id: project.id } },
      body: { name: "tenant-a", image: "minimal", environment_vars: { GREETING: "hello a" } },
    }),
  );
  assert.equal(container.status, "running");
  assert.match(container.url, /^http:\/\/tenant-a--ts-acme\.localhost/);

  // A claim project's URL opens only with a link from its app.
  const refused = await viaProxy(container.url);
  assert.equal(refused.status, 401);
  assert.equal(JSON.parse(refused.body).error.code, "claim_required");
  const link = await unwrap(
    cubby.POST("/api/v1/containers/{id}/authorize", { params: { path: { id: container.id } }, body: {} }),
  );
  const redirect = await viaProxy(link.url);
  assert.equal(redirect.status, 303);
  const cookie = redirect.headers["set-cookie"][0].split(";")[0];
  const page = await viaProxy(container.url, { Cookie: cookie });
  assert.equal(page.status, 200);
  assert.equal(JSON.parse(page.body).greeting, "hello a");

  // One env var, typed, applied now.
  const env = await unwrap(
    cubby.PUT("/api/v1/containers/{id}/env/{key}", {
      params: { path: { id: container.id, key: "GREETING" }, query: { restart: true } },
      body: { value: "bonjour" },
    }),
  );
  assert.equal(env.GREETING, "bonjour");
  assert.equal(JSON.parse((await viaProxy(container.url, { Cookie: cookie })).body).greeting, "bonjour");

  // Errors come back typed, with the API's stable code.
  await assert.rejects(
    unwrap(cubby.GET("/api/v1/containers/{id}", { params: { path: { id: "cnotarealidxx" } } })),
    (e) => e instanceof CubbyError && e.status === 404 && e.code === "container_not_found",
  );

  // Delete forgets it.
  const deleted = await cubby.DELETE("/api/v1/containers/{id}", { params: { path: { id: container.id } } });
  assert.equal(deleted.response.status, 204);
  await assert.rejects(
    unwrap(cubby.GET("/api/v1/containers/{id}", { params: { path: { id: container.id } } })),
    (e) => e.code === "container_not_found",
  );
  await unwrap(cubby.DELETE("/api/v1/projects/{id}", { params: { path: { id: project.id } } }).then((r) => ({ ...r, data: null })));
});
