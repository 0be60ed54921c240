"""REST API, login and live dashboard (SSE) of the fleet server (FastAPI)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from kpai_fleet.errors import DispatchError, StoreError, ValidationRejected
from kpai_fleet.server.auth import SessionSigner, check_bearer
from kpai_fleet.server.http_guard import HttpGuard
from kpai_fleet.server.service import FleetService
from kpai_fleet.vda5050.guard import check_json_bytes

__all__ = ['create_app']

STATIC = Path(__file__).with_name('static')
COOKIE = 'kpai_session'
LOGIN_MAX_BYTES = 4096
TASK_MAX_BYTES = 64 * 1024

LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>KPAI fleet login</title>
<style>body{{font-family:sans-serif;background:#10151c;color:#dde;display:flex;
justify-content:center;margin-top:15vh}}form{{background:#1b2330;padding:2em;border-radius:8px}}
input{{display:block;margin:.5em 0 1em;padding:.4em;width:16em}}.err{{color:#f77}}</style>
</head><body><form method="post" action="/login"><h2>KPAI fleet</h2>{error}
<label>User<input name="user" autocomplete="username"></label>
<label>Password<input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Log in</button></form></body></html>"""


async def read_body(request: Request, limit: int) -> bytes:
    """Read a request body of at most limit bytes; HTTP 413 past it (chunked bodies too)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f'request body over {limit} bytes')
        chunks.append(chunk)
    return b''.join(chunks)


def allowed_hosts(configured: tuple[str, ...], bind_host: str) -> tuple[str, ...]:
    """Return the Host names to answer: the configured ones plus a specific bind address."""
    if bind_host and bind_host not in ('0.0.0.0', '::', ''):
        return (*configured, bind_host)
    return configured


def create_app(svc: FleetService) -> Any:
    """Build the ASGI application (FastAPI inside HttpGuard) around a FleetService."""
    cfg = svc.cfg
    signer = SessionSigner(cfg.session_secret, cfg.session_max_age_s)
    app = FastAPI(title='KPAI fleet server', docs_url=None, redoc_url=None, openapi_url=None)
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cfg.cors_origins),
                           allow_methods=['GET', 'POST'], allow_headers=['Authorization'])

    def can_read(request: Request) -> bool:
        if cfg.public_read:
            return True
        return bool(signer.verify(request.cookies.get(COOKIE))) or check_bearer(
            request.headers.get('authorization'), cfg.api_token)

    def require_read(request: Request) -> None:
        if not can_read(request):
            svc.auth_failures += 1
            raise HTTPException(401, 'log in or send a bearer token')

    def require_write(request: Request) -> None:
        if not cfg.api_token:
            raise HTTPException(403, 'API writes are disabled: configure api_token')
        if not check_bearer(request.headers.get('authorization'), cfg.api_token):
            svc.auth_failures += 1
            raise HTTPException(401, 'a valid bearer token is required')

    @app.get('/login', response_class=HTMLResponse)
    def login_form() -> str:
        return LOGIN_PAGE.format(error='')

    @app.post('/login')
    async def login(request: Request) -> Response:
        form = parse_qs((await read_body(request, LOGIN_MAX_BYTES)).decode(errors='replace'))
        user = form.get('user', [''])[0]
        password = form.get('password', [''])[0]
        if user != cfg.dashboard_user or not signer.check_password(password,
                                                                   cfg.dashboard_password):
            svc.auth_failures += 1
            return HTMLResponse(LOGIN_PAGE.format(
                error='<p class="err">Wrong user or password</p>'), status_code=401)
        resp = RedirectResponse('/', status_code=303)
        resp.set_cookie(COOKIE, signer.issue(user), max_age=cfg.session_max_age_s,
                        httponly=True, samesite='strict')
        return resp

    @app.post('/logout')
    def logout() -> Response:
        resp = RedirectResponse('/login', status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get('/')
    def index(request: Request) -> Response:
        if not can_read(request):
            return RedirectResponse('/login', status_code=303)
        return FileResponse(STATIC / 'index.html')

    @app.get('/static/{name}')
    def static(name: str, request: Request) -> Response:
        require_read(request)
        path = STATIC / name
        if '/' in name or not path.is_file():
            raise HTTPException(404, 'no such file')
        return FileResponse(path)

    def fast_json(data: Any) -> Response:
        # json.dumps directly: FastAPI's generic encoder is slow for 1,000 robot summaries
        return Response(json.dumps(data, separators=(',', ':')), media_type='application/json')

    @app.get('/api/robots')
    def robots(request: Request, fields: str = '') -> Response:
        """List robots; `fields=a,b` returns only those keys (cheap polling of big fleets)."""
        require_read(request)
        rows = svc.view.snapshot()
        if fields:
            keys = [k for k in fields.split(',') if k]
            rows = [{k: r.get(k) for k in keys} for r in rows]
        return fast_json(rows)

    @app.get('/api/robots/{robot_id}/state')
    def robot_state(robot_id: str, request: Request) -> dict[str, Any]:
        require_read(request)
        state = svc.store.latest_state(robot_id)
        if state is None:
            raise HTTPException(404, f'no state stored for robot {robot_id!r}')
        return state

    @app.get('/api/robots/{robot_id}/history')
    def history(robot_id: str, request: Request, since: float = 0.0,
                until: float | None = None, limit: int = 1000) -> Response:
        require_read(request)
        if not 1 <= limit <= 100000:
            raise HTTPException(422, 'limit must be within [1, 100000]')
        return fast_json(svc.store.history(robot_id, since,
                                           until if until is not None else 1e18, limit))

    @app.get('/api/errors')
    def errors(request: Request, since: float = 0.0, limit: int = 200) -> list[dict[str, Any]]:
        require_read(request)
        return svc.store.events(kinds=('error', 'rejected'), since=since,
                                limit=max(1, min(limit, 10000)))

    @app.get('/api/events')
    def events(request: Request, since: float = 0.0, limit: int = 200) -> list[dict[str, Any]]:
        require_read(request)
        return svc.store.events(since=since, limit=max(1, min(limit, 10000)))

    @app.get('/api/orders')
    def orders(request: Request, limit: int = 200) -> list[dict[str, Any]]:
        """List orders: status (dispatched/running/completed/failed/cancelled/rejected), reason."""
        require_read(request)
        return svc.store.orders(limit=max(1, min(limit, 10000)))

    @app.get('/api/tasks')
    def task_list(request: Request, limit: int = 200) -> list[dict[str, Any]]:
        """List tasks with status, reason and current order."""
        require_read(request)
        return svc.store.tasks(limit=max(1, min(limit, 10000)))

    @app.get('/api/tasks/{task_id}')
    def task(task_id: str, request: Request) -> dict[str, Any]:
        """Return a task with every order sent for it (rejections and their reasons)."""
        require_read(request)
        found = svc.task(task_id)
        if found is None:
            raise HTTPException(404, f'no task {task_id!r}')
        return found

    @app.get('/api/robots/{robot_id}/factsheet')
    def factsheet(robot_id: str, request: Request) -> Response:
        """Return the latest factsheet the robot sent."""
        require_read(request)
        payload = svc.store.factsheet(robot_id)
        if payload is None:
            raise HTTPException(404, f'no factsheet stored for robot {robot_id!r}')
        return Response(payload, media_type='application/json')

    @app.get('/api/metrics')
    def metrics(request: Request) -> dict[str, Any]:
        require_read(request)
        return svc.metrics()

    @app.get('/api/health')
    def health(request: Request) -> dict[str, Any]:
        """Store and MQTT health: `store` is 'store unavailable' while the database is away."""
        require_read(request)
        return svc.health()

    @app.get('/api/map')
    def map_meta(request: Request) -> dict[str, Any]:
        require_read(request)
        meta = dict(svc.map_meta or {})
        meta.pop('image', None)
        return {'has_image': svc.map_meta is not None, 'bounds': list(cfg.bounds),
                'stations': {k: p.__dict__ for k, p in cfg.stations.items()}, **meta}

    @app.get('/api/map.pgm')
    def map_image(request: Request) -> Response:
        require_read(request)
        if svc.map_meta is None:
            raise HTTPException(404, 'no map configured')
        return FileResponse(svc.map_meta['image'], media_type='image/x-portable-graymap')

    @app.post('/api/tasks', status_code=201)
    async def tasks(request: Request) -> dict[str, Any]:
        require_write(request)
        raw = await read_body(request, TASK_MAX_BYTES)
        try:
            check_json_bytes(raw, max_bytes=TASK_MAX_BYTES)  # depth and numbers, before parsing
            body = json.loads(raw)
        except ValidationRejected as rej:
            raise HTTPException(400, rej.reason) from None
        except ValueError as err:
            raise HTTPException(400, f'malformed JSON: {err}') from None
        try:
            return await asyncio.to_thread(svc.dispatch, body)
        except DispatchError as err:
            raise HTTPException(409, str(err)) from None

    @app.get('/api/stream')
    async def stream(request: Request) -> StreamingResponse:
        require_read(request)
        period = 1.0 / cfg.stream_hz

        async def events() -> AsyncIterator[bytes]:
            seen: tuple[int, bool] = (-1, True)
            last_beat = time.monotonic()
            while not await request.is_disconnected():
                now = (svc.view.version, svc.store.available)
                if now != seen:
                    seen = now
                    data = json.dumps({'robots': svc.view.snapshot(), 'time': time.time(),
                                       'store_available': now[1],
                                       'store': 'available' if now[1]
                                       else 'store unavailable'})
                    yield f'event: robots\ndata: {data}\n\n'.encode()
                elif time.monotonic() - last_beat > 10:
                    last_beat = time.monotonic()
                    yield b': keep-alive\n\n'
                await asyncio.sleep(period)

        return StreamingResponse(events(), media_type='text/event-stream',
                                 headers={'Cache-Control': 'no-store'})

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({'detail': f'store unavailable: {exc}'}, status_code=503)

    return HttpGuard(app, allowed_hosts=allowed_hosts(cfg.allowed_hosts, cfg.host),
                     faults=svc.faults, body_limits={'/login': LOGIN_MAX_BYTES,
                                                     '/api/tasks': TASK_MAX_BYTES})
