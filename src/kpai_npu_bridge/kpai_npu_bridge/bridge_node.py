"""Lifecycle node `npu_bridge`: camera images -> batched inference -> Detection2DArray."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from kpai_perception.errors import ImageConversionError
from kpai_perception.image_conv import image_to_rgb8
from kpai_perception.node_util import spin_lean, spin_until_stopped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
)
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from kpai_msgs.msg import InferenceStats as InferenceStatsMsg
from kpai_msgs.srv import GetInferenceStats, LoadModel, SwitchBackend

from .bridge_config import DEFAULTS, DESCRIPTIONS, BridgeConfig, ConfigError, validate_value
from .bridge_msgs import detections_msg, diagnostic_status, stats_msg
from .engine import EngineStatus, FrameResult, InferenceEngine, PipelineSpec
from .fallback import FallbackState
from .stats import InferenceStats

__all__ = ['NpuBridgeNode', 'main']

_SERVICE_TIMEOUT_S = 600.0  # a first compile of a large model on a slow device


def _open_pipeline(cfg: BridgeConfig) -> Any:
    """Return an opener that builds a kpai_npu_bridge Pipeline for a spec."""
    from .pipeline import Pipeline

    options = dict(cfg.backend_options)

    def opener(spec: PipelineSpec, progress: Any) -> Any:
        # options are backend-specific: pass them only to the configured backend
        pipe = Pipeline.open(
            spec.model_path, backend=spec.backend, device=spec.device,
            cache_dir=cfg.cache_dir or None, progress=progress,
            options=options if spec.backend == cfg.backend else None)
        if cfg.score_threshold is not None:  # may lower the manifest threshold, not only raise
            m = pipe.manifest
            pipe.manifest = replace(m, thresholds=replace(m.thresholds,
                                                          score=cfg.score_threshold))
        return pipe

    return opener


class NpuBridgeNode(LifecycleNode):
    """Subscribes to N cameras, runs the model off the executor thread, publishes detections."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('npu_bridge', **kwargs)
        for name, default in DEFAULTS.items():
            self.declare_parameter(name, default, ParameterDescriptor(
                name=name, description=DESCRIPTIONS[name]))
        self.config = BridgeConfig.from_values(self._values())  # ConfigError is fatal here
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.stats = InferenceStats(window_s=self.config.stats_window)
        self._engine: InferenceEngine[Any] | None = None
        self._error = ''
        self._state = 'unconfigured'
        self._pubs: list[Any] = []
        self._subs: list[Any] = []
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._stats_pub = self.create_publisher(InferenceStatsMsg, 'inference_stats', 10)
        # Services and reports live on a helper node spun by its own executor thread, so that
        # a model load (seconds to minutes) never stalls the image callbacks, diagnostics keep
        # flowing while the first model compiles, and the images get a cheap single-threaded
        # executor. The helper ignores global ROS arguments (no __node/__ns renaming into a
        # duplicate) and serves under this node's name.
        self.control = rclpy.create_node(
            f'{self.get_name()}_control', namespace=self.get_namespace(), context=self.context,
            use_global_arguments=False, start_parameter_services=False)
        fqn = self.get_fully_qualified_name()
        calls, reports = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        for srv_type, name, callback in (
                (LoadModel, 'load_model', self._on_load_model),
                (SwitchBackend, 'switch_backend', self._on_switch_backend),
                (Trigger, 'reset_fallback', self._on_reset_fallback)):
            self.control.create_service(srv_type, f'{fqn}/{name}', callback,
                                        callback_group=calls)
        self.control.create_service(GetInferenceStats, f'{fqn}/get_stats', self._on_get_stats,
                                    callback_group=reports)
        self.control.create_timer(self.config.stats_period, self._report,
                                  callback_group=reports)
        self._autostart_timer = None
        if self.config.autostart:
            self._autostart_timer = self.create_timer(0.01, self._autostart)

    # -- parameters --------------------------------------------------------------------------

    def _values(self) -> dict[str, Any]:
        return {name: self.get_parameter(name).value for name in DEFAULTS}

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name in DEFAULTS:
                reason = validate_value(p.name, p.value)
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def _autostart(self) -> None:
        if self._autostart_timer is not None:
            self.destroy_timer(self._autostart_timer)
            self._autostart_timer = None
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            cfg = BridgeConfig.from_values(self._values())
        except ConfigError as err:
            return self._fail(f'invalid parameters: {err}')
        if not cfg.model_path:
            return self._fail('parameter model_path is empty: no model to load')
        self.config = cfg
        engine: InferenceEngine[Any] = InferenceEngine(
            cameras=len(cfg.image_topics), max_batch=cfg.max_batch,
            max_wait_s=cfg.max_wait_ms / 1000.0, fallback_after=cfg.fallback_after_failures,
            opener=_open_pipeline(cfg), on_results=self._publish,
            on_event=self._on_engine_event, score_threshold=cfg.score_threshold,
            stats=self.stats)
        self._engine = engine  # diagnostics show 'compiling' while the model loads
        outcome = engine.load(PipelineSpec(cfg.model_path, cfg.backend, cfg.device))
        if not outcome.success:
            self._engine = None
            engine.close()
            return self._fail(outcome.message)
        self._error = ''
        self._pubs = [self.create_lifecycle_publisher(Detection2DArray, topic, 10)
                      for topic in cfg.output_topics]
        info = engine.status().backend_info
        self.get_logger().info(
            f'configured: {cfg.model_path} on {info.name} ({info.vendor}, {info.device}, '
            f'{info.runtime_version}); cameras {list(cfg.image_topics)} -> '
            f'{list(cfg.output_topics)}')
        self._state = 'inactive'
        return TransitionCallbackReturn.SUCCESS

    def _fail(self, reason: str) -> TransitionCallbackReturn:
        self._error = reason
        self.get_logger().error(f'configure failed: {reason}')
        return TransitionCallbackReturn.ERROR

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured; a retry may work

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self._engine is not None
        self._subs = [
            self.create_subscription(
                Image, topic, lambda msg, cam=i, t=topic: self._on_image(msg, cam, t),
                qos_profile_sensor_data)
            for i, topic in enumerate(self.config.image_topics)]
        self._engine.start()
        self._state = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._engine is not None:
            self._engine.stop()
        self._state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        for pub in self._pubs:
            self.destroy_lifecycle_publisher(pub)
        self._pubs = []

    # -- streaming ---------------------------------------------------------------------------

    def _on_image(self, msg: Image, camera: int, topic: str) -> None:
        received = time.monotonic()
        engine = self._engine
        if engine is None:
            return
        try:
            rgb = image_to_rgb8(msg)
        except ImageConversionError as err:
            self.stats.add_rejected()
            self.get_logger().warning(f'rejected image on {topic}: {err}',
                                      throttle_duration_sec=5.0)
            return
        engine.submit(camera, rgb, msg.header, received)

    def _publish(self, results: list[FrameResult[Any]]) -> None:
        pubs = self._pubs
        for r in results:
            if r.camera < len(pubs):
                try:
                    pubs[r.camera].publish(detections_msg(r.meta, r.detections))
                except Exception:
                    if self.context.ok():
                        raise
                    return  # Ctrl-C shut the context down under the worker: drop the result

    def _on_engine_event(self, level: str, message: str) -> None:
        log = self.get_logger()
        if level == 'warn':
            log.warning(message)
        else:
            log.error(message, throttle_duration_sec=2.0)

    # -- services ----------------------------------------------------------------------------

    def _on_load_model(self, req: Any, resp: Any) -> Any:
        engine = self._engine
        if engine is None:  # unconfigured (e.g. the first model was missing): configure now
            updates = [Parameter('model_path', value=req.model_path)]
            if req.backend:
                updates.append(Parameter('backend', value=req.backend))
            updates.append(Parameter('device', value=req.device))
            self.set_parameters(updates)
            ok = self.trigger_configure() == TransitionCallbackReturn.SUCCESS
            if ok and self.config.autostart:
                self.trigger_activate()
            resp.success, resp.message = ok, 'configured' if ok else self._error
            resp.model_sha256 = self._engine.status().model_sha256 if self._engine else ''
            return resp
        current = engine.status().requested
        backend = req.backend or (current.backend if current else self.config.backend)
        outcome = engine.load_async(PipelineSpec(req.model_path, backend, req.device)).result(
            timeout=_SERVICE_TIMEOUT_S)
        self._log_outcome('load_model', outcome.success, outcome.message)
        resp.success, resp.message, resp.model_sha256 = (
            outcome.success, outcome.message, outcome.model_sha256)
        return resp

    def _on_switch_backend(self, req: Any, resp: Any) -> Any:
        engine = self._engine
        current = engine.status().requested if engine is not None else None
        if engine is None or current is None:
            resp.success, resp.message = False, f'no model loaded ({self._state}) {self._error}'
            return resp
        outcome = engine.load_async(PipelineSpec(current.model_path, req.backend, req.device)
                                    ).result(timeout=_SERVICE_TIMEOUT_S)
        self._log_outcome('switch_backend', outcome.success, outcome.message)
        resp.success, resp.message = outcome.success, outcome.message
        return resp

    def _on_reset_fallback(self, req: Any, resp: Any) -> Any:
        engine = self._engine
        if engine is None:
            resp.success, resp.message = False, f'no model loaded ({self._state})'
            return resp
        outcome = engine.return_from_fallback().result(timeout=_SERVICE_TIMEOUT_S)
        self._log_outcome('reset_fallback', outcome.success, outcome.message)
        resp.success, resp.message = outcome.success, outcome.message
        return resp

    def _log_outcome(self, what: str, ok: bool, message: str) -> None:
        (self.get_logger().info if ok else self.get_logger().error)(f'{what}: {message}')

    def _on_get_stats(self, req: Any, resp: Any) -> Any:
        resp.stats = self._stats_msg()
        return resp

    # -- reports -----------------------------------------------------------------------------

    def _status(self) -> EngineStatus:
        if self._engine is not None:
            return self._engine.status()
        return EngineStatus(None, None, None, '', False, '', FallbackState(False, '', 0, 0),
                            self._error)

    def _stats_msg(self) -> InferenceStatsMsg:
        return stats_msg(self.stats.snapshot(), self._status(),
                         node_name=self.get_fully_qualified_name(),
                         stamp=self.get_clock().now().to_msg())

    def _report(self) -> None:
        stamp = self.get_clock().now().to_msg()
        snap = self.stats.snapshot()
        status = self._status()
        self._stats_pub.publish(stats_msg(snap, status, node_name=self.get_fully_qualified_name(),
                                          stamp=stamp))
        diag = DiagnosticArray()
        diag.header.stamp = stamp
        diag.status = [diagnostic_status(
            snap, status, name=f'{self.get_fully_qualified_name()}: inference',
            state=self._state, error=self._error)]
        self._diag_pub.publish(diag)

    def close(self) -> None:
        """Release the model and threads (called before destroy_node)."""
        self._release()


def main(args: list[str] | None = None) -> int:
    """Run the npu_bridge node; exit code 1 with one line on a fatal configuration error."""
    rclpy.init(args=args)
    node = None
    control = MultiThreadedExecutor(num_threads=2)
    stop = threading.Event()
    control_thread = threading.Thread(target=spin_until_stopped, args=(control, stop),
                                      name='npu-control', daemon=True)
    code = 0
    try:
        node = NpuBridgeNode()
        control.add_node(node.control)
        control_thread.start()
        spin_lean(node)
    except (ConfigError, ParameterException) as err:
        print(f'npu_bridge: invalid configuration: {err}', file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # an entity failed while Ctrl-C tore the context down under the executor: shutdown
    finally:
        stop.set()
        if control_thread.is_alive():
            control_thread.join(timeout=10.0)
        control.shutdown(timeout_sec=5.0)
        if node is not None:
            node.close()
            node.control.destroy_node()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
