"""A compact anchor-free detector (PyTorch): backbone, FPN-lite, per-level heads, loss.

The export form outputs [N, 4+C, A] (cx, cy, w, h in input pixels; per-class sigmoid scores),
the YOLOv8 head layout the NPU bridge decodes. Requires torch (the optional training extra).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['STRIDES', 'DetectorLoss', 'ExportWrapper', 'TinyDetector', 'anchor_points',
           'decode_levels']

STRIDES = (8, 16, 32)
# objects whose larger side is up to these many pixels go to P3, P4; larger ones to P5
_LEVEL_LIMITS = (64.0, 128.0)


def _conv(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.SiLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(ch, ch), _conv(ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TinyDetector(nn.Module):
    """Backbone to strides 8/16/32, top-down fusion, a 3x3 head and box/class outputs."""

    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 48, 64, 96),
                 neck: int = 48) -> None:
        super().__init__()
        w = list(widths)
        self.num_classes = num_classes
        self.stem = nn.Sequential(_conv(3, w[0], 2), _conv(w[0], w[1], 2))
        self.c3 = nn.Sequential(_conv(w[1], w[2], 2), _Residual(w[2]))
        self.c4 = nn.Sequential(_conv(w[2], w[3], 2), _Residual(w[3]))
        self.c5 = nn.Sequential(_conv(w[3], w[4], 2), _Residual(w[4]))
        self.lat = nn.ModuleList([_conv(c, neck, k=1) for c in (w[2], w[3], w[4])])
        self.smooth = nn.ModuleList([_conv(neck, neck) for _ in STRIDES])
        self.head = nn.ModuleList([_conv(neck, neck) for _ in STRIDES])
        self.box = nn.ModuleList([nn.Conv2d(neck, 4, 1) for _ in STRIDES])
        self.cls = nn.ModuleList([nn.Conv2d(neck, num_classes, 1) for _ in STRIDES])
        for cls_conv in self.cls:
            nn.init.constant_(cls_conv.bias, -4.6)  # type: ignore[arg-type]  # prior ~1 %
        for box_conv in self.box:
            nn.init.constant_(box_conv.bias, 1.0)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return per level (box distances [B,4,H,W] raw, class logits [B,C,H,W])."""
        p3 = self.c3(self.stem(x))
        p4 = self.c4(p3)
        p5 = self.c5(p4)
        f5 = self.lat[2](p5)
        f4 = self.lat[1](p4) + F.interpolate(f5, scale_factor=2.0, mode='nearest')
        f3 = self.lat[0](p3) + F.interpolate(f4, scale_factor=2.0, mode='nearest')
        out = []
        for i, f in enumerate((f3, f4, f5)):
            h = self.head[i](self.smooth[i](f))
            out.append((self.box[i](h), self.cls[i](h)))
        return out


def anchor_points(shapes: Sequence[tuple[int, int]], device: torch.device | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return cell centres [A,2] (pixels), their strides [A] and level index [A]."""
    points, strides, levels = [], [], []
    for level, ((h, w), s) in enumerate(zip(shapes, STRIDES, strict=True)):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                                indexing='ij')
        pts = torch.stack([xs, ys], dim=-1).reshape(-1, 2).float().add(0.5).mul(s)
        points.append(pts)
        strides.append(torch.full((h * w,), float(s), device=device))
        levels.append(torch.full((h * w,), level, device=device, dtype=torch.long))
    return torch.cat(points), torch.cat(strides), torch.cat(levels)


def decode_levels(outputs: list[tuple[torch.Tensor, torch.Tensor]],
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return boxes xyxy [B,A,4] (pixels), class logits [B,A,C] and anchor points [A,2]."""
    shapes = [tuple(box.shape[2:]) for box, _ in outputs]
    points, strides, _ = anchor_points(shapes, outputs[0][0].device)  # type: ignore[arg-type]
    dist = torch.cat([F.softplus(b).flatten(2) for b, _ in outputs], 2).transpose(1, 2)
    logits = torch.cat([c.flatten(2) for _, c in outputs], 2).transpose(1, 2)
    dist = dist * strides[None, :, None]
    boxes = torch.cat([points[None] - dist[..., :2], points[None] + dist[..., 2:]], dim=-1)
    return boxes, logits, points


class ExportWrapper(nn.Module):
    """The deployable form: [B, 4+C, A] with cx, cy, w, h and sigmoid class scores."""

    def __init__(self, model: TinyDetector) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        boxes, logits, _ = decode_levels(self.model(images))
        cxcy = (boxes[..., :2] + boxes[..., 2:]) / 2
        wh = boxes[..., 2:] - boxes[..., :2]
        return torch.cat([cxcy, wh, logits.sigmoid()], dim=-1).transpose(1, 2)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of paired xyxy boxes [N,4]."""
    lt = torch.max(a[:, :2], b[:, :2])
    rb = torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    union = area_a + area_b - inter + 1e-9
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    iou = inter / union
    return iou - (hull - union) / (hull + 1e-9)


def assign(points: torch.Tensor, strides: torch.Tensor, levels: torch.Tensor,
           gt_boxes: torch.Tensor, radius: float = 2.5) -> torch.Tensor:
    """Return for each point the index of its ground-truth box, or -1 (background).

    A point is positive for a box when it lies inside the box, within radius strides of
    the box centre and on the level for the box size; the smallest box wins ties. Every box
    gets at least the point nearest its centre on its level.
    """
    num = gt_boxes.shape[0]
    matched = torch.full((points.shape[0],), -1, dtype=torch.long, device=points.device)
    if num == 0:
        return matched
    size = (gt_boxes[:, 2:] - gt_boxes[:, :2]).max(1).values
    gt_level = (size > _LEVEL_LIMITS[0]).long() + (size > _LEVEL_LIMITS[1]).long()
    centre = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    px, py = points[:, 0:1], points[:, 1:2]
    inside = ((px > gt_boxes[None, :, 0]) & (px < gt_boxes[None, :, 2])
              & (py > gt_boxes[None, :, 1]) & (py < gt_boxes[None, :, 3]))
    near = ((px - centre[None, :, 0]).abs() < radius * strides[:, None]) & (
        (py - centre[None, :, 1]).abs() < radius * strides[:, None])
    on_level = levels[:, None] == gt_level[None, :]
    ok = inside & near & on_level
    d2 = ((points[:, None, :] - centre[None]) ** 2).sum(-1)
    d2 = torch.where(on_level, d2, torch.full_like(d2, float('inf')))
    nearest = d2.argmin(0)
    ok[nearest, torch.arange(num, device=points.device)] = True
    area = (gt_boxes[:, 2:] - gt_boxes[:, :2]).prod(1)
    cost = torch.where(ok, area[None, :].expand_as(ok), torch.full_like(d2, float('inf')))
    best = cost.argmin(1)
    has = torch.isfinite(cost.min(1).values)
    matched[has] = best[has]
    return matched


class DetectorLoss:
    """Focal loss on classes (all points) + GIoU on positive points' boxes."""

    def __init__(self, num_classes: int, box_weight: float = 2.0, alpha: float = 0.25,
                 gamma: float = 2.0) -> None:
        self.num_classes, self.box_weight = num_classes, box_weight
        self.alpha, self.gamma = alpha, gamma

    def __call__(self, outputs: list[tuple[torch.Tensor, torch.Tensor]],
                 targets: Sequence[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """targets[i]: [M,5] (class, x1, y1, x2, y2 in input pixels) for image i."""
        boxes, logits, _ = decode_levels(outputs)
        shapes = [tuple(b.shape[2:]) for b, _ in outputs]
        points, strides, levels = anchor_points(shapes, boxes.device)  # type: ignore[arg-type]
        cls_target = torch.zeros_like(logits)
        pos_pred, pos_gt = [], []
        for i, t in enumerate(targets):
            m = assign(points, strides, levels, t[:, 1:5])
            pos = m >= 0
            if pos.any():
                cls_target[i, pos, t[m[pos], 0].long()] = 1.0
                pos_pred.append(boxes[i, pos])
                pos_gt.append(t[m[pos], 1:5])
        num_pos = max(1, sum(len(p) for p in pos_pred))
        p = logits.sigmoid()
        ce = F.binary_cross_entropy_with_logits(logits, cls_target, reduction='none')
        p_t = p * cls_target + (1 - p) * (1 - cls_target)
        a_t = self.alpha * cls_target + (1 - self.alpha) * (1 - cls_target)
        cls_loss = (a_t * (1 - p_t) ** self.gamma * ce).sum() / num_pos
        if pos_pred:
            box_loss = (1 - giou(torch.cat(pos_pred), torch.cat(pos_gt))).mean()
        else:
            box_loss = logits.sum() * 0
        total = cls_loss + self.box_weight * box_loss
        return total, {'cls': float(cls_loss.detach()), 'box': float(box_loss.detach()),
                       'pos': float(num_pos)}
