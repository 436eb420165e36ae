Deno.serve(async (req) => {
  const [a, b] = await Promise.all([
    fetch("http://api.local/rest/v1/x?select=*", { method: "POST", body: "one", headers: { Authorization: "Bearer z" } }),
    fetch(new Request("http://api.local/two", { method: "PUT", body: JSON.stringify({ n: 2 }) })),
  ])
  let blocked = ""
  try { await fetch("http://blocked.example/") } catch (e) { blocked = e.message }
  return Response.json({ a: await a.json(), b: await b.json(), status: a.status, x: a.headers.get("x-from"), blocked })
})
