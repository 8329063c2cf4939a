// Compiled with `tsc --noEmit` (npm run check), never run: the client's
// types follow the API, so a call that does not fit is a compile error.
import { createClient, unwrap, type Schemas } from "../src/index.js";

export async function example(): Promise<Schemas["Container"]> {
  const cubby = createClient({ baseUrl: "http://127.0.0.1:7070", token: "cubby_..." });
  const project = await unwrap(cubby.POST("/api/v1/projects", { body: { name: "acme" } }));
  const created: Schemas["Container"] = await unwrap(
    cubby.POST("/api/v1/projects/{id}/containers", {
      params: { path: { id: project.id } },
      body: { name: "tenant-a", environment_vars: { GREETING: "hi" } },
    }),
  );
  // @ts-expect-error: a container has no `colour`.
  void created.colour;
  const rule: Schemas["FirewallRule"] = await unwrap(
    cubby.POST("/api/v1/containers/{id}/firewall/{direction}", {
      params: { path: { id: created.id, direction: "egress" } },
      body: { action: "reject", protocol: "tcp", ports: "25", position: 0 },
    }),
  );
  void rule.shadowed_by;
  return created;
}
