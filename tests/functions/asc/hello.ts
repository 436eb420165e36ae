// A CGI (WAGI) edge function in AssemblyScript (WASI through @assemblyscript/wasi-shim): greets the `name`
// query parameter and reports the method and the body's length.
let method = process.env.has("REQUEST_METHOD") ? process.env.get("REQUEST_METHOD") : "?";
let query = process.env.has("QUERY_STRING") ? process.env.get("QUERY_STRING") : "";
let name = "world";
let pairs = query.split("&");
for (let i = 0; i < pairs.length; i++) {
  if (pairs[i].startsWith("name=")) name = pairs[i].substring(5);
}
let total = 0;
let buffer = new ArrayBuffer(4096);
while (true) {
  let got = process.stdin.read(buffer);
  if (got <= 0) break;
  total += got;
}
process.stdout.write("Status: 200\r\nContent-Type: application/json\r\nX-Language: AssemblyScript\r\n\r\n");
process.stdout.write('{"greeting":"hello ' + name + '","method":"' + method + '","body_bytes":' + total.toString() + "}");
