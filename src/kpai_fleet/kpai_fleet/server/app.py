"""REST API, login and live dashboard (SSE) of the fleet server (FastAPI)."""

from __future__ import annotations

import asyncio
import html
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
from kpai_fleet.server.access import CSRF_HEADER, Access, AccessDenied, Principal
from kpai_fleet.server.auth import SessionSigner
from kpai_fleet.server.http_guard import HttpGuard
from kpai_fleet.server.service import INSTANT_KINDS, FleetService
from kpai_fleet.vda5050.guard import check_json_bytes

__all__ = ['create_app']

STATIC = Path(__file__).with_name('static')
I18N = STATIC / 'i18n'
LANGUAGES = ('en', 'ko')
COOKIE = 'kpai_session'
LOGIN_MAX_BYTES = 4096
TASK_MAX_BYTES = 64 * 1024

LOGIN_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,'Noto Sans CJK KR',sans-serif;background:#10151c;color:#dde;
display:flex;justify-content:center;margin:15vh 0 0}}form{{background:#1b2330;padding:2em;
border-radius:8px;max-width:90vw}}input{{display:block;margin:.5em 0 1em;padding:.4em;
width:16em;max-width:100%}}.err{{color:#f77}}</style>
</head><body><form method="post" action="/login"><h2>{title}</h2>{error}
<label>{user}<input name="user" autocomplete="username"></label>
<label>{password}<input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">{submit}</button></form></body></html>"""


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


def load_catalogues() -> dict[str, dict[str, str]]:
    """Read the dashboard's message catalogues (static/i18n/<lang>.json)."""
    return {lang: json.loads((I18N / f'{lang}.json').read_text(encoding='utf-8'))
            for lang in LANGUAGES}


def pick_language(accept: str | None) -> str:
    """Return the first supported language of an Accept-Language header (by q), else 'en'."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept or '').split(',')):
        tag, _, params = part.strip().partition(';')
        q = 1.0
        if params.strip().startswith('q='):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split('-')[0]
        if lang in LANGUAGES and q > 0:
            ranked.append((-q, i, lang))
    return min(ranked)[2] if ranked else 'en'


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
    access = Access(cfg, signer)
    catalogues = load_catalogues()

    def login_page(request: Request, error: bool = False) -> str:
        lang = pick_language(request.headers.get('accept-language'))
        msgs = catalogues[lang]
        return LOGIN_PAGE.format(
            lang=lang, title=html.escape(msgs['login.title']),
            user=html.escape(msgs['login.user']),
            password=html.escape(msgs['login.password']),
            submit=html.escape(msgs['login.submit']),
            error=f'<p class="err">{html.escape(msgs["login.error"])}</p>' if error else '')

    def who(request: Request) -> Principal | None:
        return access.principal(request.cookies.get(COOKIE),
                                request.headers.get('authorization'))

    def can_read(request: Request) -> bool:
        return who(request) is not None

    def require_read(request: Request) -> Principal:
        found = who(request)
        if found is None:
            svc.auth_failures += 1
            raise HTTPException(401, 'log in or send a bearer token')
        return found

    def require_write(request: Request) -> Principal:
        """Return the operator (token or session + CSRF token) or raise 401/403."""
        try:
            return access.check_write(who(request), request.headers.get('authorization'),
                                      request.headers.get(CSRF_HEADER))
        except AccessDenied as err:
            if err.status == 401:
                svc.auth_failures += 1
            raise HTTPException(err.status, err.detail) from None

    @app.get('/login', response_class=HTMLResponse)
    def login_form(request: Request) -> str:
        return login_page(request)

    @app.post('/login')
    async def login(request: Request) -> Response:
        form = parse_qs((await read_body(request, LOGIN_MAX_BYTES)).decode(errors='replace'))
        user = form.get('user', [''])[0]
        password = form.get('password', [''])[0]
        if access.login(user, password) is None:
            svc.auth_failures += 1
            return HTMLResponse(login_page(request, error=True), status_code=401)
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

    @app.get('/api/session')
    def session(request: Request) -> dict[str, Any]:
        """Return who is logged in, the role, the CSRF token for writes, the language."""
        found = require_read(request)
        return {'user': found.user, 'role': found.role, 'via': found.via,
                'can_write': found.role == 'operator',
                'csrf': signer.csrf_token(found.cookie) if found.via == 'session' else '',
                'csrf_header': CSRF_HEADER,
                'lang': pick_language(request.headers.get('accept-language')),
                'languages': list(LANGUAGES)}

    @app.get('/static/i18n/{name}')
    def catalogue(name: str, request: Request) -> Response:
        require_read(request)
        if name not in {f'{lang}.json' for lang in LANGUAGES}:
            raise HTTPException(404, 'no such catalogue')
        return FileResponse(I18N / name, media_type='application/json')

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

    @app.get('/api/robots/{robot_id}/camera.jpg')
    def camera(robot_id: str, request: Request) -> Response:
        """Return the robot's newest annotated camera thumbnail; asking renews its lease.

        404 for an unknown robot or one without the KPAI camera topics, 204 while no thumbnail
        younger than a few seconds is here (the first one comes about a second after the first
        request).
        """
        require_read(request)
        has_camera, thumb = svc.camera_image(robot_id)
        if not has_camera:
            raise HTTPException(404, f'no KPAI robot {robot_id!r} (no camera to share)')
        headers = {'Cache-Control': 'no-store'}
        if thumb is None:
            return Response(status_code=204, headers=headers)
        return Response(thumb.jpeg, media_type='image/jpeg', headers=headers)

    @app.get('/api/objects')
    def tracked_objects(request: Request) -> Response:
        """List the people and objects the robots track now (map frame, aged out)."""
        require_read(request)
        return fast_json(svc.tracked.snapshot())

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

    @app.post('/api/tasks/{task_id}/cancel')
    async def cancel_task(task_id: str, request: Request) -> dict[str, Any]:
        """Cancel a task: cancelOrder to the vehicle that has its order; the task `cancelled`."""
        user = require_write(request).user
        try:
            out = await asyncio.to_thread(svc.cancel_task, task_id, user)
        except DispatchError as err:
            raise HTTPException(409, str(err)) from None
        if out is None:
            raise HTTPException(404, f'no task {task_id!r}')
        return out

    @app.post('/api/robots/{robot_id}/actions/{kind}')
    async def robot_action(robot_id: str, kind: str, request: Request) -> dict[str, Any]:
        """Send an instant action: pause (startPause), resume (stopPause), cancel (cancelOrder)."""
        user = require_write(request).user
        if kind not in INSTANT_KINDS:
            known = ', '.join(INSTANT_KINDS)
            raise HTTPException(404, f'unknown action {kind!r} (known: {known})')
        try:
            out = await asyncio.to_thread(svc.instant_action, robot_id, kind, user)
        except DispatchError as err:
            raise HTTPException(409, str(err)) from None
        if out is None:
            raise HTTPException(404, f'no robot {robot_id!r}')
        return out

    @app.get('/api/kpis')
    def kpis(request: Request, window_s: float = 3600.0) -> dict[str, Any]:
        """Fleet KPIs of the last window_s seconds: tasks/h, task time mean/p95, utilisation."""
        require_read(request)
        if not 60.0 <= window_s <= 7 * 86400.0:
            raise HTTPException(422, 'window_s must be within [60, 604800]')
        return svc.kpis(window_s)

    @app.get('/api/alarms')
    def alarms(request: Request) -> list[dict[str, Any]]:
        """List the alarms not yet acknowledged (active or cleared), newest first."""
        require_read(request)
        return svc.alarms()

    @app.post('/api/alarms/{alarm_id}/ack')
    def ack_alarm(alarm_id: int, request: Request) -> dict[str, Any]:
        """Acknowledge an alarm (it leaves the list)."""
        user = require_write(request).user
        if not svc.alarm_book.acknowledge(alarm_id, user):
            raise HTTPException(404, f'no unacknowledged alarm {alarm_id}')
        return {'id': alarm_id, 'acked_by': user}

    @app.get('/api/stream')
    async def stream(request: Request) -> StreamingResponse:
        require_read(request)
        period = 1.0 / cfg.stream_hz

        async def events() -> AsyncIterator[bytes]:
            seen: tuple[int, bool, int] = (-1, True, -1)
            last_beat = time.monotonic()
            while not await request.is_disconnected():
                now = (svc.view.version, svc.store.available, svc.tracked.version)
                if now != seen:
                    seen = now
                    data = json.dumps({'robots': svc.view.snapshot(), 'time': time.time(),
                                       'objects': svc.tracked.snapshot(),
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
