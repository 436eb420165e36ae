// Node 20's experimental WebSocket reports a refused connection with `error` but never `close` and stays
// CONNECTING forever, so Phoenix (which reconnects on close) stalls. This transport completes the spec'd
// error → close sequence; browsers and Node 22 do that themselves.
export class NodeWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols)
    this._synthClosed = false
    this.addEventListener('error', () => {
      if (super.readyState === WebSocket.CONNECTING) {
        this._synthClosed = true
        setTimeout(() => { if (this.onclose) this.onclose({ code: 1006, reason: '', wasClean: false }) }, 0)
      }
    })
  }

  get readyState() { return this._synthClosed ? WebSocket.CLOSED : super.readyState }

  close(code, reason) { if (!this._synthClosed) super.close(code, reason) }
}
