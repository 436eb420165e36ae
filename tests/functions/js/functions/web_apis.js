const checks = {}
const check = async (name, fn) => { try { checks[name] = await fn() } catch (e) { checks[name] = "THROWN " + e } }
Deno.serve(async () => {
  await check("url", () => {
    const u = new URL("../b/c?x=1#h", "https://user:pw@Example.com:443/a/z")
    u.searchParams.append("y", "two words")
    return u.href
  })
  await check("params", () => new URLSearchParams({ a: "1", b: "x&y" }).toString())
  await check("pattern", () => new URLPattern({ pathname: "/books/:id" }).exec("https://x.io/books/42").pathname.groups.id)
  await check("text", () => new TextDecoder().decode(new TextEncoder().encode("żółw €")))
  await check("b64", () => btoa("hello") + atob("aGk="))
  await check("headers", () => { const h = new Headers({ A: "1" }); h.append("a", "2"); return [...h].join(";") })
  await check("blob", async () => { const b = new Blob(["ab", new Uint8Array([99])], { type: "text/plain" }); return `${b.size}:${await b.text()}:${b.type}` })
  await check("formdata", async () => { const f = new FormData(); f.append("k", "v"); const r = new Response(f); return (await r.formData()).get("k") })
  await check("stream", async () => {
    const s = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("st")); c.enqueue(new TextEncoder().encode("ream")); c.close() } })
    return await new Response(s).text()
  })
  await check("uuid", () => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()))
  await check("random", () => { const a = crypto.getRandomValues(new Uint8Array(16)); return a.some((x) => x !== 0) })
  await check("sha256", async () => [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc")))].map((b) => b.toString(16).padStart(2, "0")).join(""))
  await check("sha512", async () => [...new Uint8Array(await crypto.subtle.digest("SHA-512", new TextEncoder().encode("abc")))].map((b) => b.toString(16).padStart(2, "0")).join(""))
  await check("sha1", async () => [...new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode("abc")))].map((b) => b.toString(16).padStart(2, "0")).join(""))
  await check("hmac", async () => {
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("secret"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])
    const sig = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("msg"))
    const ok = await crypto.subtle.verify("HMAC", key, sig, new TextEncoder().encode("msg"))
    return [...new Uint8Array(sig)].map((b) => b.toString(16).padStart(2, "0")).join("") + ":" + ok
  })
  await check("timeout", () => new Promise((resolve) => setTimeout(() => resolve("fired"), 20)))
  await check("abort", () => { const c = new AbortController(); let seen = ""; c.signal.addEventListener("abort", () => { seen = "aborted" }); c.abort(); return seen + ":" + c.signal.reason.name })
  await check("env", () => [Deno.env.get("MY_SECRET"), Deno.env.toObject().MY_SECRET, Deno.env.get("NOPE")])
  await check("clone", () => structuredClone({ a: [1, { b: 2 }] }).a[1].b)
  await check("responseJson", async () => (await Response.json({ k: 1 }).json()).k)
  await check("console", () => { console.log("log %s", "line", { a: 1 }); console.error(new Error("boom")); return true })
  await check("fs", async () => { try { await Deno.readTextFile("/etc/passwd"); return "read!" } catch (e) { return e.name } })
  await check("quickjsModules", () => [typeof std, typeof os].join(","))
  return Response.json(checks)
})
