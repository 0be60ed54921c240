"""`kpai-fleet`: run the fleet server (`serve`) or a local Mosquitto broker (`broker`)."""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import signal
import sys
import threading
from collections.abc import Sequence

from kpai_fleet.errors import FleetError

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
    if args.local_broker:
        broker = LocalBroker(port=args.broker_port or 0).start()
        print(f'kpai-fleet: started Mosquitto at {broker.url} (pid {broker.proc.pid})',
              flush=True)
    try:
        cfg = load_config(args.config, db_url=args.db, broker_url=broker.url if broker
                          else args.broker, host=args.host, port=args.port)
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

    users = {}
    if args.user:
        name, _, password = args.user.partition(':')
        users[name] = password
    broker = LocalBroker(port=args.port, users=users, allow_anonymous=not users)
    broker.start()
    print(f'kpai-fleet: Mosquitto listening at {broker.url} (pid {broker.proc.pid}); '
          'Ctrl-C stops it', flush=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the kpai-fleet console script."""
    parser = argparse.ArgumentParser(prog='kpai-fleet', description=__doc__)
    sub = parser.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('serve', help='run the fleet server (MQTT ingest, API, dashboard)')
    s.add_argument('--config', help='YAML configuration file (fleet_server: mapping)')
    s.add_argument('--db', help='sqlite:///path or postgresql://... (default: config)')
    s.add_argument('--broker', help='mqtt://host:port or mqtts://host:port')
    s.add_argument('--host', help='bind address (default 127.0.0.1)')
    s.add_argument('--port', type=int, help='HTTP port (default 8080)')
    s.add_argument('--local-broker', action='store_true',
                   help='start a private Mosquitto on a free loopback port and use it')
    s.add_argument('--broker-port', type=int, default=0, help='port for --local-broker')
    s.add_argument('--log-level', default='warning')
    b = sub.add_parser('broker', help='run a local Mosquitto on loopback')
    b.add_argument('--port', type=int, default=1883)
    b.add_argument('--user', help='user:password (disables anonymous access)')
    args = parser.parse_args(argv)
    try:
        return _serve(args) if args.cmd == 'serve' else _broker(args)
    except FleetError as err:
        print(f'kpai-fleet: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == '__main__':
    sys.exit(main())
