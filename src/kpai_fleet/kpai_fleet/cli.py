"""`kpai-fleet`: the fleet server (`serve`), a local broker (`broker`), MQTT `credentials`,
and the VDA 5050 conformance kit for vehicles of any maker (`conformance`)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from kpai_fleet.credentials import SECRETS_ENV, SERVER_USER, CredentialStore, default_secrets_dir
from kpai_fleet.errors import ConfigError, FleetError

PASSWORD_FILE_ENV = 'KPAI_FLEET_MQTT_PASSWORD_FILE'
_SECRET_WAIT_S = 15.0  # a broker started alongside (launch file) provisions meanwhile


def _read_secret(path: str, *, wait_s: float) -> str:
    """Return the first line of the file at path, waiting up to wait_s for it to appear."""
    deadline = time.monotonic() + wait_s
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        return Path(path).read_text().rstrip('\r\n')
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f'cannot read the MQTT password file {path} ({type(err).__name__})'
                          ) from None


def _url_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def _broker_credentials(args: argparse.Namespace) -> dict[str, str]:
    """Return the server's MQTT user and password overrides from --secrets/--broker-* flags."""
    user, pw_file = args.broker_user, args.broker_password_file
    if not pw_file and os.environ.get(PASSWORD_FILE_ENV):
        pw_file = os.environ[PASSWORD_FILE_ENV]
    if args.secrets:
        user = user or SERVER_USER
        pw_file = pw_file or str(CredentialStore(args.secrets).password_file(user))
    out = {'mqtt_username': user} if user else {}
    if pw_file:
        out['mqtt_password'] = _read_secret(pw_file, wait_s=_SECRET_WAIT_S)
    if args.broker_ca:
        out['mqtt_ca_file'] = args.broker_ca
    return out

__all__ = ['main']


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    # contained faults (bad payloads, handler errors) are reported rate-limited on this logger
    logging.basicConfig(level=logging.WARNING, format='kpai-fleet: %(name)s: %(message)s')

    from kpai_fleet.broker import LocalBroker
    from kpai_fleet.mqtt_link import redact_url
    from kpai_fleet.server.app import create_app
    from kpai_fleet.server.config import load_config
    from kpai_fleet.server.service import FleetService

    broker = None
    creds = _broker_credentials(args)
    if args.broker and _url_password(args.broker):
        print('kpai-fleet: warning: a password in --broker is visible to every local user (ps);'
              ' use --broker-password-file or $KPAI_FLEET_MQTT_PASSWORD', file=sys.stderr)
    if args.local_broker:
        broker = LocalBroker(port=args.broker_port or 0).start()
        assert broker.credentials is not None and broker.proc is not None
        creds = {'mqtt_username': SERVER_USER,
                 'mqtt_password': broker.credentials.password(SERVER_USER)}
        print(f'kpai-fleet: started Mosquitto at {broker.url} (pid {broker.proc.pid}, '
              f'credentials in {broker.credentials.root})', flush=True)
    try:
        cfg = load_config(args.config, db_url=args.db, broker_url=broker.url if broker
                          else args.broker, host=args.host, port=args.port, **creds)
        if not cfg.dashboard_password and not cfg.public_read:
            cfg = dataclasses.replace(cfg, dashboard_password=secrets.token_urlsafe(9))
            print(f'kpai-fleet: dashboard login {cfg.dashboard_user} / {cfg.dashboard_password} '
                  '(made up for this run; set KPAI_FLEET_PASSWORD to choose one)', flush=True)
        svc = FleetService(cfg)
        svc.start()
        app = create_app(svc)
        print(f'kpai-fleet: dashboard and API on http://{cfg.host}:{cfg.port}/ '
              f'(store {cfg.db_url.split("@")[-1]}, broker {redact_url(cfg.broker_url)})',
              flush=True)
        server = uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port,
                                               log_level=args.log_level, access_log=False))
        try:
            server.run()
        finally:
            svc.stop()
    finally:
        if broker is not None:
            broker.close()
    return 0


def _broker(args: argparse.Namespace) -> int:
    from kpai_fleet.broker import LocalBroker

    store = None
    if args.anonymous:
        print('kpai-fleet: WARNING: --anonymous: any local process may publish orders to any '
              'robot and forge any state (development only)', file=sys.stderr, flush=True)
    else:
        store = CredentialStore(args.secrets or default_secrets_dir(), interface=args.interface)
        store.add_server()
        for i in range(1, args.robots + 1):
            store.add_vehicle(args.manufacturer, f'robot{i}')
        if not any(i.role == 'vehicle' for i in store.identities()):
            print(f'kpai-fleet: no vehicle provisioned in {store.root} yet: add one with '
                  '`kpai-fleet credentials add SERIAL`', file=sys.stderr)
    broker = LocalBroker(port=args.port, allow_anonymous=args.anonymous, credentials=store,
                         tls_port=args.tls_port)
    broker.start()
    assert broker.proc is not None
    where = f'{broker.url}' + (f' and {broker.tls_url}' if broker.tls_url else '')
    print(f'kpai-fleet: Mosquitto listening at {where} (pid {broker.proc.pid}); '
          + (f'credentials in {store.root}; ' if store else '') + 'Ctrl-C stops it', flush=True)
    if broker.tls is not None:
        print(f'kpai-fleet: TLS CA certificate for clients: {broker.tls.ca_file}', flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if broker.proc is None or broker.proc.poll() is not None:
                print('kpai-fleet: mosquitto exited\n' + broker.log_tail(), file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        broker.close()
    return 0


def _conformance(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from kpai_fleet.agent_core import PASSWORD_ENV, load_password
    from kpai_fleet.conformance.options import KitOptions
    from kpai_fleet.conformance.plan import RouteSpec, load_route
    from kpai_fleet.conformance.report import write_report
    from kpai_fleet.conformance.run import run_conformance

    opts = KitOptions(
        broker_url=args.broker, manufacturer=args.manufacturer, serial=args.serial,
        interface=args.interface_name, major=args.version, username=args.username,
        password=load_password(args.password_file, os.environ), ca_file=args.ca_file,
        timeout_s=args.timeout, connect_timeout_s=args.connect_timeout,
        event_timeout_s=args.event_timeout, max_state_gap_s=args.max_state_gap,
        pause_hold_s=args.pause_hold, step_m=args.step, await_will_s=args.await_will,
        route=load_route(args.nodes) if args.nodes else RouteSpec()).validate()
    if not args.nodes:
        print(f'kpai-fleet: no --nodes: the test route goes {args.step:g} m ahead of the '
              'vehicle along its heading and back; make sure that space is free', flush=True)
    report = run_conformance(opts, say=lambda line: print(line, flush=True))
    paths = write_report(report, Path(args.report))
    verdict = report.verdict.value.upper()
    print(f'{opts.manufacturer}/{opts.serial}: conformance {verdict} (exit code '
          f'{report.exit_code}); report: {paths["markdown"]} and {paths["json"].name}'
          + ('' if args.password_file or not os.environ.get(PASSWORD_ENV) else
             f' (MQTT password from ${PASSWORD_ENV})'), flush=True)
    return report.exit_code


def _add_conformance(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser(
        'conformance', help='check a VDA 5050 2.0 vehicle of any maker over MQTT',
        description='Run the VDA 5050 2.0 conformance checks against one vehicle. Exit code '
        '0: pass; 1: a check failed; 3: incomplete (vehicle offline, or a required check '
        'could not run); 2: usage or configuration error.')
    c.add_argument('--broker', required=True, help='mqtt://[user@]host:port or mqtts://...')
    c.add_argument('--manufacturer', required=True, help='manufacturer part of the topics')
    c.add_argument('--serial', required=True, help='serial number part of the topics')
    c.add_argument('--interface-name', default='uagv', help='first topic level (default uagv)')
    c.add_argument('--version', default='v2', help='major version topic level (default v2)')
    c.add_argument('--username', default='', help='MQTT user name (default: from the URL)')
    c.add_argument('--password-file', default='',
                   help='file holding the MQTT password (default: $KPAI_MQTT_PASSWORD)')
    c.add_argument('--ca-file', default='', help='CA bundle for mqtts://')
    c.add_argument('--nodes', default='',
                   help='test route: a YAML/JSON file or inline JSON with nodes: [{x, y, '
                   'theta}], mapId, allowedDeviationXY, and pick:/drop: actionParameters')
    c.add_argument('--step', type=float, default=1.0,
                   help='without --nodes: metres ahead of the vehicle for the route (default 1)')
    c.add_argument('--report', default='conformance', help='report directory')
    c.add_argument('--timeout', type=float, default=60.0,
                   help='seconds to wait for each reaction of the vehicle (default 60)')
    c.add_argument('--connect-timeout', type=float, default=35.0,
                   help='seconds to wait for the first state (default 35)')
    c.add_argument('--event-timeout', type=float, default=5.0,
                   help='an order or instant action must show in a state within this (s)')
    c.add_argument('--max-state-gap', type=float, default=30.0,
                   help='longest time without a state (default 30 s, the specification)')
    c.add_argument('--pause-hold', type=float, default=2.0,
                   help='seconds the kit watches the paused vehicle (default 2)')
    c.add_argument('--await-will', type=float, default=0.0,
                   help='at the end, wait this long for CONNECTIONBROKEN while you break the '
                   'vehicle connection (default 0: the last will check is skipped)')


def _credentials(args: argparse.Namespace) -> int:
    store = CredentialStore(args.secrets or default_secrets_dir(), interface=args.interface)
    if args.action == 'list':
        for ident in store.identities():
            what = (f'{ident.manufacturer}/{ident.serial_number}' if ident.role == 'vehicle'
                    else 'reads all states, writes orders and instantActions')
            print(f'{ident.user}\t{ident.role}\t{what}\t{store.password_file(ident.user)}')
        return 0
    if args.action == 'add':
        if args.server:
            ident = store.add_server(args.user or SERVER_USER, rotate=args.rotate)
        elif args.serial:
            ident = store.add_vehicle(args.manufacturer, args.serial, user=args.user,
                                      rotate=args.rotate)
        else:
            raise ConfigError('credentials add needs a SERIAL number or --server')
        print(f'kpai-fleet: {ident.role} {ident.user}: password in '
              f'{store.password_file(ident.user)}')
    else:
        if not args.serial:
            raise ConfigError('credentials remove needs the USER to remove')
        ident = store.remove(args.serial)
        print(f'kpai-fleet: removed {ident.role} {ident.user}')
    pid = store.reload_broker()
    print(f'kpai-fleet: broker (pid {pid}) reloaded' if pid else
          'kpai-fleet: no running broker recorded; it reads the change when it starts')
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the kpai-fleet console script."""
    parser = argparse.ArgumentParser(prog='kpai-fleet', description=__doc__)
    sub = parser.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('serve', help='run the fleet server (MQTT ingest, API, dashboard)')
    s.add_argument('--config', help='YAML configuration file (fleet_server: mapping)')
    s.add_argument('--db', help='sqlite:///path or postgresql://... (default: config)')
    s.add_argument('--broker', help='mqtt://[user@]host:port or mqtts://...')
    s.add_argument('--broker-user', help=f'MQTT user (with --secrets: {SERVER_USER})')
    s.add_argument('--broker-password-file', help='file holding the MQTT password (default '
                   f'${PASSWORD_FILE_ENV}; or set $KPAI_FLEET_MQTT_PASSWORD)')
    s.add_argument('--broker-ca', help='CA certificate of an mqtts:// broker')
    s.add_argument('--secrets', help='credentials directory of `kpai-fleet broker`: use its '
                   'fleet server identity')
    s.add_argument('--host', help='bind address (default 127.0.0.1)')
    s.add_argument('--port', type=int, help='HTTP port (default 8080)')
    s.add_argument('--local-broker', action='store_true',
                   help='start a private Mosquitto on a free loopback port and use it')
    s.add_argument('--broker-port', type=int, default=0, help='port for --local-broker')
    s.add_argument('--log-level', default='warning')
    secrets_help = (f'credentials directory (default ${SECRETS_ENV}, else '
                    '~/.local/state/kpai/mqtt)')
    b = sub.add_parser('broker', help='run a local Mosquitto on loopback (clients need '
                       'credentials: see `credentials`)')
    b.add_argument('--port', type=int, default=1883)
    b.add_argument('--secrets', help=secrets_help)
    b.add_argument('--robots', type=int, default=0,
                   help='provision robot1..robotN (if missing) before starting')
    b.add_argument('--manufacturer', default='KPAI', help='manufacturer of --robots')
    b.add_argument('--interface', default='uagv', help='VDA 5050 interfaceName')
    b.add_argument('--tls-port', type=int, default=None,
                   help='also listen with TLS here (a demo CA is made in <secrets>/tls)')
    b.add_argument('--anonymous', action='store_true',
                   help='DEVELOPMENT ONLY: no authentication, no ACL')
    c = sub.add_parser('credentials', help='provision MQTT identities of vehicles and the '
                       'fleet server (password files, ACL); reloads a running broker')
    c.add_argument('action', choices=('add', 'remove', 'list'))
    c.add_argument('serial', nargs='?', default='',
                   help='add: serial number of the vehicle; remove: its user')
    c.add_argument('--manufacturer', default='KPAI', help='VDA 5050 manufacturer (add)')
    c.add_argument('--user', default='', help='MQTT user (default: the serial number)')
    c.add_argument('--server', action='store_true', help='add the fleet server identity')
    c.add_argument('--rotate', action='store_true', help='make a new password (add)')
    c.add_argument('--secrets', help=secrets_help)
    c.add_argument('--interface', default='uagv', help='VDA 5050 interfaceName')
    _add_conformance(sub)
    args = parser.parse_args(argv)
    handlers = {'serve': _serve, 'broker': _broker, 'credentials': _credentials,
                'conformance': _conformance}
    try:
        return handlers[args.cmd](args)
    except FleetError as err:
        print(f'kpai-fleet: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == '__main__':
    sys.exit(main())
