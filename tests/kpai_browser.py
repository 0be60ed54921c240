"""Headless Chromium (Debian package) driven over the DevTools protocol, for dashboard tests."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx
from kpai_testing import ManagedProcess, ros_env, wait_until

__all__ = ['CHROMIUM', 'Browser']

CHROMIUM = Path('/usr/bin/chromium')


class Browser:
    """Headless Chromium driven over the DevTools protocol with the `websockets` package."""

    def __init__(self, tmp: Path) -> None:
        from websockets.sync.client import connect

        profile = tmp / 'chrome'
        self.proc = ManagedProcess(
            [str(CHROMIUM), '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
             '--no-first-run', '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--window-size=1400,800', '--remote-debugging-port=0',
             f'--user-data-dir={profile}', 'about:blank'], env=ros_env(0), name='chromium')
        port_file = profile / 'DevToolsActivePort'
        wait_until(port_file.exists, timeout=30, what='chromium DevTools port')
        port = int(wait_until(lambda: port_file.read_text().split('\n')[0], timeout=5))
        pages = wait_until(lambda: [t for t in httpx.get(
            f'http://127.0.0.1:{port}/json/list', timeout=2).json() if t['type'] == 'page'],
            timeout=10, what='a page target')
        self.ws = connect(pages[0]['webSocketDebuggerUrl'], max_size=64 * 2**20)  # noqa: SIM115
        self._ids = itertools.count(1)

    def call(self, method: str, **params: object) -> dict:
        mid = next(self._ids)
        self.ws.send(json.dumps({'id': mid, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get('id') == mid:
                if 'error' in msg:
                    raise RuntimeError(f'{method}: {msg["error"]}')
                return msg.get('result', {})

    def eval(self, expression: str) -> object:
        res = self.call('Runtime.evaluate', expression=expression, returnByValue=True)
        return res['result'].get('value')

    def poll(self, expression: str) -> object:
        """eval for wait loops: None while a navigation replaces the page's context (Chromium
        answers 'Inspected target navigated or closed' or 'Cannot find context' then)."""
        try:
            return self.eval(expression)
        except RuntimeError as err:
            if 'navigated or closed' in str(err) or 'context' in str(err).lower():
                return None
            raise

    def open(self, url: str) -> None:
        """Navigate to url and wait until the document has loaded."""
        self.call('Page.enable')
        self.call('Page.navigate', url=url)
        wait_until(lambda: self.poll('document.readyState') == 'complete', timeout=20,
                   what=f'{url} loaded')

    def login(self, base: str, user: str, password: str) -> None:
        """Log in through the dashboard's own login form."""
        self.open(base + '/login')
        self.eval(
            f'document.querySelector("input[name=user]").value = {json.dumps(user)};'
            f'document.querySelector("input[name=password]").value = {json.dumps(password)};'
            'document.querySelector("form").submit(); true')
        wait_until(lambda: self.poll('location.pathname') == '/', timeout=20,
                   what='the dashboard after login')

    def screenshot(self) -> bytes:
        """Return a PNG of the page."""
        import base64

        return base64.b64decode(self.call('Page.captureScreenshot', format='png')['data'])

    def close(self) -> None:
        self.ws.close()
        self.proc.stop()
