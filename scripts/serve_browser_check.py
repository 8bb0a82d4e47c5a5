#!/usr/bin/env python3
"""The page of `voxelprompt serve` in a real browser: headless Chromium (Debian package) driven
over the DevTools protocol (--remote-debugging-pipe, no extra packages). Loads the page, uploads
a scan through the file input, asks a question, runs hand-written code that shows a mask
(`:code`, since a test-sized model writes no working program), waits for the answer, the steps
and the overlay (niivue volumes or the PNG fallback), checks them in the page and saves a
screenshot.

usage: serve_browser_check.py URL SCAN OUT.png   (exit 0 when every check passes)
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="vp-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            # Through spare numbers: a pipe end may already be 3 or 4, and dup2 onto itself
            # would keep its close-on-exec flag.
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                "chromium", "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
                "--disable-gpu-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={self.profile}",
                "--window-size=1400,1000", "about:blank",
            ],
            # The pipe ends become fds 3 and 4 after the fork; close_fds would close them.
            preexec_fn=fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression, what, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(expression):
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")

    def close(self):
        self.proc.kill()
        self.proc.wait()


def main():
    url, scan, out = sys.argv[1:4]
    b = Browser()
    try:
        targets = b.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        b.session = b.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                           session=False)["sessionId"]
        b.call("Page.enable")
        b.call("Runtime.enable")
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        b.call("Page.navigate", {"url": url})
        b.wait("document.readyState === 'complete' && typeof state !== 'undefined' && "
               "state.viewer !== null", "the page and its viewer")
        viewer = b.eval("state.viewer")
        root = b.call("DOM.getDocument")["root"]["nodeId"]
        node = b.call("DOM.querySelector", {"nodeId": root, "selector": "#files"})["nodeId"]
        b.call("DOM.setFileInputFiles", {"nodeId": node, "files": [os.path.abspath(scan)]})
        b.wait("!document.getElementById('start').disabled", "the chosen scan")
        b.eval("document.querySelector('#chosen .date').value = '2024-03-01';"
               "document.getElementById('start').click()")
        b.wait("!document.getElementById('prompt').disabled", "the session")

        def ask(text):
            n = b.eval("document.querySelectorAll('.msg.answer').length")
            b.eval(f"document.getElementById('prompt').value = {json.dumps(text)};"
                   "document.getElementById('send').click()")
            b.wait(f"document.querySelectorAll('.msg.answer').length === {n + 1} && "
                   "!document.getElementById('send').disabled", f"the answer to {text!r}")

        ask("segment the brain")
        ask(':code let m = generate(encode(t1 <mod>) <mod>); '
            'respond("region: " + volume(m) + " mL"); show(m, "region"); stop();')
        if viewer == "niivue":
            b.wait("state.nv.volumes.length === 2", "the overlay in niivue", 60)
        else:
            b.wait("document.querySelectorAll('#pngs img').length === 1 && "
                   "document.querySelector('#pngs img').complete", "the PNG overlay", 60)
        time.sleep(1.0)
        found = b.eval("""({
            viewer: state.viewer,
            note: document.getElementById('viewer-note').textContent,
            session: document.getElementById('upload-status').textContent,
            answers: [...document.querySelectorAll('.msg.answer')].map(a => ({
                head: a.querySelector('.head').textContent,
                steps: a.querySelectorAll('.steps details').length,
                text: a.querySelector('.text').textContent.slice(0, 200)})),
            legend: [...document.querySelectorAll('#legend li')].map(l => l.textContent),
            measurements: [...document.querySelectorAll('#measurements tbody tr')]
                .map(r => r.textContent),
            downloads: [...document.querySelectorAll('#downloads a')].map(a => a.textContent),
            volumes: state.nv ? state.nv.volumes.map(v => v.name) : [],
            pngs: document.querySelectorAll('#pngs img').length,
        })""")
        shot = b.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot))
        print(json.dumps(found, indent=1))
        problems = []
        if len(found["answers"]) != 2 or not all(a["head"].startswith("answer") for a in found["answers"]):
            problems.append("two answers expected")
        if found["answers"][0]["steps"] < 1:
            problems.append("the first answer shows no steps")
        if "region" not in found["answers"][1]["text"]:
            problems.append("the code's answer is not shown")
        if not any("region" in l for l in found["legend"]):
            problems.append("no legend entry for the mask")
        if not any("mL" in m for m in found["measurements"]):
            problems.append("no measurement with its unit")
        if not any(d.endswith("region.nii.gz") for d in found["downloads"]):
            problems.append("no download link for the mask")
        if viewer == "niivue" and len(found["volumes"]) != 2:
            problems.append("niivue does not hold the scan and the mask")
        if problems:
            print("FAILED: " + "; ".join(problems))
            return 1
        print(f"ok: screenshot in {out}")
        return 0
    finally:
        b.close()


if __name__ == "__main__":
    sys.exit(main())
