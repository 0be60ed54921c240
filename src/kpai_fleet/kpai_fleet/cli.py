"""`kpai-fleet`: the fleet server (`serve`), a local Mosquitto (`broker`), and the VDA 5050
conformance kit for vehicles of any maker (`conformance`)."""

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
    _add_conformance(sub)
    args = parser.parse_args(argv)
    commands = {'serve': _serve, 'broker': _broker, 'conformance': _conformance}
    try:
        return commands[args.cmd](args)
    except FleetError as err:
        print(f'kpai-fleet: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == '__main__':
    sys.exit(main())
