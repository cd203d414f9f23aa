"""Articulated people for the synthetic benchmark: a 3D stick body seen by an orthographic camera.

A person is a small kinematic tree (pelvis, spine, neck, head, two arms and two legs)
posed by joint angles, turned by a yaw angle about the vertical axis and projected
orthographically onto the image. Projection keeps a depth per point, which gives
both the drawing order of the body parts (far parts first) and the self-occlusion
rules of :attr:`Body.own_parts`.

Coordinate conventions:

* body frame ``(lateral, down, forward)``: ``+lateral`` is the person's left side,
  ``+down`` points to the feet, ``+forward`` is where the chest faces;
* image frame: ``x`` to the right, ``y`` down (pixel centres at integer
  coordinates, COCO's convention) and ``depth`` away from the camera. A person with
  ``yaw = 0`` faces the camera, so their left side appears on the image's right.

Lengths are in units of the standing body height and scaled to pixels by
:func:`articulate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from occlupose.structures.keypoint_set import COCO_KEYPOINTS

__all__ = [
    "PART_NAMES",
    "POINT_NAMES",
    "POSE_KINDS",
    "VIEWS",
    "Body",
    "Part",
    "Pose",
    "articulate",
    "primitive_bounds",
    "sample_pose",
]

# The 17 COCO points plus CrowdPose's "head" (top of the head) and "neck", so that any
# keypoint set made of these names can be written from one rendering.
POINT_NAMES: tuple[str, ...] = COCO_KEYPOINTS.keypoint_names + ("head", "neck")
_P = {name: i for i, name in enumerate(POINT_NAMES)}

PART_NAMES: tuple[str, ...] = (
    "torso", "neck", "head",
    "left_upper_arm", "left_forearm", "right_upper_arm", "right_forearm",
    "left_thigh", "left_shin", "right_thigh", "right_shin",
    "eyes", "nose",
)  # fmt: skip
_PART = {name: i for i, name in enumerate(PART_NAMES)}

POSE_KINDS: tuple[str, ...] = ("standing", "walking", "arms_raised", "crouching", "sitting")
# Yaw ranges in degrees; "side" and the three-quarter views are mirrored at random.
VIEWS: dict[str, tuple[float, float]] = {
    "front": (-25.0, 25.0),
    "three_quarter": (30.0, 60.0),
    "side": (70.0, 110.0),
    "back_three_quarter": (120.0, 150.0),
    "back": (155.0, 205.0),
}

# Body proportions in units of standing height (about 1.0 from sole to crown).
_SPINE = 0.30
_NECK_TO_HEAD = 0.10
_HEAD_AXES = (0.075, 0.09)  # lateral and vertical half axes of the head ellipse
_SHOULDER_HALF = 0.13
_HIP_HALF = 0.09
_TORSO_HALF_DEPTH = 0.065
_UPPER_ARM, _FOREARM, _HAND = 0.17, 0.15, 0.045
_THIGH, _SHIN, _FOOT = 0.245, 0.245, 0.07
# A shoulder or hip further behind the torso centre than this fraction of the
# half-width is hidden by the torso (it shows only through its own limb).
_FAR_SIDE_FRACTION = 0.8
# A face point is on the far side of the head when its offset from the head centre,
# normalised, points away from the camera by more than this cosine: eyes and nose
# turn away only past a profile view, ears (at the sides) past ~37 degrees of turn.
_FACE_FAR_COSINE = {
    "nose": 0.2,
    "left_eye": 0.2,
    "right_eye": 0.2,
    "left_ear": 0.6,
    "right_ear": 0.6,
}
# Face marks drawn on the head where the eyes and the nose face the camera: (part,
# lateral and vertical half axes). Real faces show where these keypoints are; without
# marks they would sit at places no pixel tells (head yaw and pitch are not drawn).
_FACE_MARKS = {
    "left_eye": ("eyes", (0.012, 0.009)),
    "right_eye": ("eyes", (0.012, 0.009)),
    "nose": ("nose", (0.011, 0.013)),
}


@dataclass
class Pose:
    """Joint angles of one person, in degrees.

    ``arms`` and ``legs`` are ``(2, 3)``: row 0 the left limb, row 1 the right, columns
    ``(swing, abduction, bend)``. Swing rotates the limb forward from hanging straight
    down (90 = pointing forward, 180 = straight up); abduction lifts it sideways away
    from the body; bend flexes the elbow forward or the knee backward.
    """

    kind: str = "standing"
    view: str = "front"
    yaw: float = 0.0
    roll: float = 0.0  # in-plane rotation of the whole body, clockwise in the image
    lean: float = 0.0  # forward tilt of the spine
    head_pitch: float = 0.0
    head_yaw: float = 0.0
    build: float = 1.0  # width multiplier
    arms: np.ndarray = field(default_factory=lambda: np.array([[0.0, 8.0, 5.0]] * 2))
    legs: np.ndarray = field(default_factory=lambda: np.array([[0.0, 3.0, 0.0]] * 2))


@dataclass
class Part:
    """One rigid body part made of drawing primitives, in image pixels.

    ``primitives`` holds ``("limb", p0, p1, r0, r1)`` (a tapered capsule from ``p0``
    to ``p1`` with end radii ``r0``, ``r1``), ``("ellipse", centre, (a, b), angle_deg)``
    and ``("polygon", points (N, 2))``.
    """

    part_id: int
    depth: float
    primitives: list[tuple]


@dataclass
class Body:
    """A posed, projected person ready to be drawn.

    Attributes:
        points: (P, 2) image coordinates of :data:`POINT_NAMES`.
        point_depth: (P,) depth of each point (larger is further from the camera).
        own_parts: (P,) bit masks over :data:`PART_NAMES`: the parts a point may be
            seen on. A point whose pixel shows another part of the same person is
            self-occluded; a point with an empty mask (the far side of the head) is
            always self-occluded.
        parts: body parts sorted far to near (drawing order).
        extent: ``(x0, y0, x1, y1)`` of everything drawn (the full silhouette).
        height: standing height in pixels.
        pose: the pose it was built from.
    """

    points: np.ndarray
    point_depth: np.ndarray
    own_parts: np.ndarray
    parts: list[Part]
    extent: tuple[float, float, float, float]
    height: float
    pose: Pose

    def moved(self, dx: float, dy: float) -> Body:
        """The same body shifted by ``(dx, dy)`` pixels."""
        d = np.array([dx, dy], dtype=np.float64)
        parts = [
            Part(part.part_id, part.depth, [_transform(prim, 1.0, d) for prim in part.primitives])
            for part in self.parts
        ]
        x0, y0, x1, y1 = self.extent
        return Body(
            points=self.points + d,
            point_depth=self.point_depth.copy(),
            own_parts=self.own_parts.copy(),
            parts=parts,
            extent=(x0 + dx, y0 + dy, x1 + dx, y1 + dy),
            height=self.height,
            pose=self.pose,
        )


def _u(low: float, high: float, rng: np.random.Generator) -> float:
    return float(rng.uniform(low, high))


def sample_pose(
    rng: np.random.Generator,
    kind: str | None = None,
    view: str | None = None,
    view_weights: dict[str, float] | None = None,
) -> Pose:
    """Draw a pose of ``kind`` (random if None) seen from ``view`` (random if None).

    ``view_weights`` gives the probability of each entry of :data:`VIEWS` when the
    view is random (uniform over the views by default).
    """
    if kind is None:
        kind = POSE_KINDS[int(rng.integers(len(POSE_KINDS)))]
    if kind not in POSE_KINDS:
        raise ValueError(f"unknown pose kind {kind!r}; choose from {', '.join(POSE_KINDS)}")
    if view is None:
        names = list(VIEWS)
        by_view = dict.fromkeys(names, 1.0) if view_weights is None else view_weights
        unknown = sorted(set(by_view) - set(names))
        if unknown:
            raise ValueError(f"unknown views {unknown} in view_weights; views: {', '.join(names)}")
        weights = np.array([by_view.get(n, 0.0) for n in names], dtype=np.float64)
        if weights.sum() <= 0:
            raise ValueError(f"view_weights {view_weights} give no view a positive weight")
        view = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    yaw = _u(*VIEWS[view], rng) * (1.0 if rng.random() < 0.5 else -1.0)

    arms = np.zeros((2, 3))
    legs = np.zeros((2, 3))
    lean = _u(-5, 8, rng)
    for s in range(2):
        arms[s] = (_u(-20, 20, rng), _u(6, 20, rng), _u(0, 35, rng))
        legs[s] = (_u(-8, 8, rng), _u(0, 8, rng), _u(0, 10, rng))
    if kind == "walking":
        stride = _u(15, 35, rng) * (1.0 if rng.random() < 0.5 else -1.0)
        legs[:, 0] = (stride, -stride)
        back = 0 if stride < 0 else 1  # the leg behind bends more
        legs[back, 2] = _u(15, 45, rng)
        legs[1 - back, 2] = _u(0, 15, rng)
        arms[:, 0] = -0.8 * legs[:, 0] + rng.uniform(-8, 8, size=2)
        arms[:, 2] = rng.uniform(10, 45, size=2)
        lean = _u(0, 10, rng)
    elif kind == "arms_raised":
        raised = [True, rng.random() < 0.5]
        if rng.random() < 0.5:
            raised.reverse()
        for s in range(2):
            if not raised[s]:
                continue
            if rng.random() < 0.5:  # forward and up
                arms[s] = (_u(100, 180, rng), _u(0, 30, rng), _u(0, 70, rng))
            else:  # out to the side and up
                arms[s] = (_u(-10, 30, rng), _u(60, 170, rng), _u(0, 70, rng))
    elif kind == "crouching":
        for s in range(2):
            legs[s] = (_u(60, 110, rng), _u(5, 25, rng), _u(90, 140, rng))
            arms[s] = (_u(20, 90, rng), _u(0, 25, rng), _u(20, 100, rng))
        lean = _u(15, 45, rng)
    elif kind == "sitting":
        for s in range(2):
            legs[s] = (_u(75, 100, rng), _u(0, 20, rng), _u(60, 100, rng))
            arms[s] = (_u(0, 60, rng), _u(0, 20, rng), _u(20, 90, rng))
        lean = _u(-10, 15, rng)
    return Pose(
        kind=kind,
        view=view,
        yaw=yaw,
        roll=_u(-12, 12, rng),
        lean=lean,
        head_pitch=_u(-20, 20, rng),
        head_yaw=_u(-20, 20, rng),
        build=_u(0.85, 1.15, rng),
        arms=arms,
        legs=legs,
    )


def _direction(swing: float, abduction: float, side: float) -> np.ndarray:
    """Unit vector of a limb in the body frame (see :class:`Pose` for the angles)."""
    a, b = np.radians(swing), np.radians(abduction)
    return np.array([side * np.sin(b), np.cos(b) * np.cos(a), np.cos(b) * np.sin(a)])


def _bits(*names: str) -> int:
    return sum(1 << _PART[n] for n in names)


def articulate(pose: Pose, height: float, center: tuple[float, float]) -> Body:
    """Pose, project and place a person.

    Args:
        pose: joint angles and view.
        height: standing height in pixels (sole to crown when upright).
        center: image position ``(x, y)`` of the centre of the drawn silhouette's box.
    """
    if height <= 0:
        raise ValueError(f"body height must be positive, got {height}")
    pts3: dict[str, np.ndarray] = {}
    lean = np.radians(pose.lean)
    up = np.array([0.0, -np.cos(lean), np.sin(lean)])  # spine direction
    chest = np.array([0.0, np.sin(lean), np.cos(lean)])  # torso's forward axis
    lateral = np.array([1.0, 0.0, 0.0])
    w = pose.build

    pelvis = np.zeros(3)
    neck = pelvis + _SPINE * up
    # CrowdPose's "neck" label sits at the throat, a little above the shoulder line.
    pts3["neck"] = neck + 0.03 * up
    pts3["_neck_base"] = neck - 0.01 * up
    for side_name, s in (("left", 1.0), ("right", -1.0)):
        sh = neck + s * _SHOULDER_HALF * w * lateral - 0.02 * up
        hip = pelvis + s * _HIP_HALF * w * lateral
        row = 0 if s > 0 else 1
        swing, abd, bend = pose.arms[row]
        elbow = sh + _UPPER_ARM * _direction(swing, abd, s)
        fore = _direction(swing + bend, abd, s)
        wrist = elbow + _FOREARM * fore
        pts3[f"{side_name}_shoulder"], pts3[f"{side_name}_elbow"] = sh, elbow
        pts3[f"{side_name}_wrist"], pts3[f"_{side_name}_hand"] = wrist, wrist + _HAND * fore
        swing, abd, bend = pose.legs[row]
        knee = hip + _THIGH * _direction(swing, abd, s)
        ankle = knee + _SHIN * _direction(swing - bend, abd, s)
        pts3[f"{side_name}_hip"], pts3[f"{side_name}_knee"] = hip, knee
        pts3[f"{side_name}_ankle"] = ankle
        pts3[f"_{side_name}_toe"] = ankle + _FOOT * np.array([0.0, 0.25, 1.0])
        for level, center3, half in (
            ("shoulder", neck - 0.01 * up, (_SHOULDER_HALF + 0.01) * w),
            ("hip", pelvis - 0.03 * up, (_HIP_HALF + 0.02) * w),
        ):
            for d in (1.0, -1.0):
                pts3[f"_torso_{level}_{side_name}_{d:+.0f}"] = (
                    center3 + s * half * lateral + d * _TORSO_HALF_DEPTH * chest
                )

    # Head frame: turn by head_yaw about the vertical, then pitch forward.
    hy, hp = np.radians(pose.head_yaw), np.radians(pose.head_pitch + pose.lean)
    fwd0 = np.array([np.sin(hy), 0.0, np.cos(hy)])
    left_h = np.array([np.cos(hy), 0.0, -np.sin(hy)])
    up_h = np.cos(hp) * np.array([0.0, -1.0, 0.0]) + np.sin(hp) * fwd0
    fwd_h = np.cos(hp) * fwd0 + np.sin(hp) * np.array([0.0, 1.0, 0.0])
    head_c = neck + _NECK_TO_HEAD * up_h
    r = _HEAD_AXES[0]
    face_offsets = {
        "nose": (0.0, -0.15, 0.95),
        "left_eye": (0.35, 0.2, 0.85),
        "right_eye": (-0.35, 0.2, 0.85),
        "left_ear": (0.9, 0.0, 0.0),
        "right_ear": (-0.9, 0.0, 0.0),
    }
    for name, (lo, uo, fo) in face_offsets.items():
        pts3[name] = head_c + r * (lo * left_h + uo * up_h + fo * fwd_h)
    pts3["head"] = head_c + 0.9 * _HEAD_AXES[1] * up_h
    pts3["_head_center"] = head_c
    pts3["_head_up"] = head_c + up_h  # a direction handle, not drawn

    # Orthographic projection after turning the body by yaw.
    yaw = np.radians(pose.yaw)
    cy, sy = np.cos(yaw), np.sin(yaw)
    names = list(pts3)
    p3 = np.stack([pts3[n] for n in names])
    x = p3[:, 0] * cy + p3[:, 2] * sy
    depth = p3[:, 0] * sy - p3[:, 2] * cy
    roll = np.radians(pose.roll)
    cr, sr = np.cos(roll), np.sin(roll)
    xy = np.stack([x * cr - p3[:, 1] * sr, x * sr + p3[:, 1] * cr], axis=1)
    idx = {n: i for i, n in enumerate(names)}

    def p(name: str) -> np.ndarray:
        return xy[idx[name]]

    def z(*point_names: str) -> float:
        return float(np.mean([depth[idx[n]] for n in point_names]))

    up2 = p("_head_up") - p("_head_center")
    head_angle = float(np.degrees(np.arctan2(up2[0], -up2[1]))) if np.hypot(*up2) > 1e-6 else 0.0
    # The torso is a box (shoulder and hip width, chest depth); its outline is the
    # convex hull of the eight projected corners.
    corners = np.stack([p(n) for n in names if n.startswith("_torso_")])
    torso_pts = corners[cv2.convexHull(corners.astype(np.float32), returnPoints=False)[:, 0]]
    head = ("ellipse", p("_head_center"), _HEAD_AXES, head_angle)
    parts = [
        # A tiny bias puts the torso behind limbs at the same depth (arms hanging
        # at the sides of a frontal body are drawn over its outline).
        Part(_PART["torso"], 0.005, [("polygon", torso_pts)]),
        Part(_PART["head"], z("_head_center"), [head]),
    ]
    # Capsules: part -> [(from, to, radius at from, radius at to)]; the depth of a
    # part is the mean depth of its first capsule's ends.
    capsules: dict[str, list[tuple[str, str, float, float]]] = {}
    for side in ("left", "right"):
        capsules[f"{side}_upper_arm"] = [(f"{side}_shoulder", f"{side}_elbow", 0.034, 0.027)]
        capsules[f"{side}_forearm"] = [
            (f"{side}_elbow", f"{side}_wrist", 0.027, 0.022),
            (f"{side}_wrist", f"_{side}_hand", 0.022, 0.025),
        ]
        capsules[f"{side}_thigh"] = [(f"{side}_hip", f"{side}_knee", 0.055, 0.04)]
        capsules[f"{side}_shin"] = [
            (f"{side}_knee", f"{side}_ankle", 0.04, 0.03),
            (f"{side}_ankle", f"_{side}_toe", 0.03, 0.02),
        ]
    for part_name, caps in capsules.items():
        prims = [("limb", p(a), p(b), r0 * w, r1 * w) for a, b, r0, r1 in caps]
        parts.append(Part(_PART[part_name], z(caps[0][0], caps[0][1]), prims))
    # The neck is drawn just before (behind) the head, whatever the view.
    neck = ("limb", p("_neck_base"), p("_head_center"), 0.032 * w, 0.03 * w)
    parts.append(Part(_PART["neck"], z("_head_center") + 1e-3, [neck]))
    facing = {}
    for name, offset in face_offsets.items():
        away = (depth[idx[name]] - depth[idx["_head_center"]]) / (r * np.linalg.norm(offset))
        facing[name] = away <= _FACE_FAR_COSINE[name]
    marks: dict[str, list[tuple]] = {}
    for name, (part_name, axes) in _FACE_MARKS.items():
        if facing[name]:
            marks.setdefault(part_name, []).append(("ellipse", p(name), axes, head_angle))
    for part_name, prims in marks.items():
        # Just in front of the head, so they are drawn on it.
        parts.append(Part(_PART[part_name], z("_head_center") - 1e-3, prims))
    parts.sort(key=lambda part: -part.depth)

    own = np.zeros(len(POINT_NAMES), dtype=np.int64)
    for side in ("left", "right"):
        for joint, limb, half in (
            ("shoulder", "upper_arm", _SHOULDER_HALF),
            ("hip", "thigh", _HIP_HALF),
        ):
            # Far behind the torso's mid-plane (depth 0) the joint can only be seen
            # through its own limb: with the default fraction, beyond ~53 deg of yaw.
            far = depth[idx[f"{side}_{joint}"]] > _FAR_SIDE_FRACTION * half * w
            own[_P[f"{side}_{joint}"]] = _bits(f"{side}_{limb}") | (0 if far else _bits("torso"))
        own[_P[f"{side}_elbow"]] = _bits(f"{side}_upper_arm", f"{side}_forearm")
        own[_P[f"{side}_wrist"]] = _bits(f"{side}_forearm")
        own[_P[f"{side}_knee"]] = _bits(f"{side}_thigh", f"{side}_shin")
        own[_P[f"{side}_ankle"]] = _bits(f"{side}_shin")
    for name in face_offsets:
        # The marks are the face: a point near another's mark is not covered by it.
        own[_P[name]] = _bits("head", "eyes", "nose") if facing[name] else 0
    own[_P["head"]] = _bits("head")
    own[_P["neck"]] = _bits("neck", "torso", "head")

    # Scale to pixels and centre the silhouette's box on `center`.
    x0, y0, x1, y1 = _extent(parts)
    offset = np.asarray(center, dtype=np.float64) / height - np.array(
        [(x0 + x1) / 2, (y0 + y1) / 2]
    )
    for part in parts:
        part.primitives = [_transform(prim, height, offset) for prim in part.primitives]
    points = (np.stack([p(n) for n in POINT_NAMES]) + offset) * height
    ex = _extent(parts)
    return Body(
        points=points,
        point_depth=np.array([depth[idx[n]] for n in POINT_NAMES]) * height,
        own_parts=own,
        parts=parts,
        extent=ex,
        height=float(height),
        pose=pose,
    )


def _transform(prim: tuple, scale: float, offset: np.ndarray) -> tuple:
    kind = prim[0]
    if kind == "limb":
        _, p0, p1, r0, r1 = prim
        return ("limb", (p0 + offset) * scale, (p1 + offset) * scale, r0 * scale, r1 * scale)
    if kind == "ellipse":
        _, c, (a, b), angle = prim
        return ("ellipse", (c + offset) * scale, (a * scale, b * scale), angle)
    return ("polygon", (prim[1] + offset) * scale)


def primitive_bounds(prim: tuple) -> tuple[float, float, float, float]:
    """Box ``(x0, y0, x1, y1)`` of one drawing primitive."""
    kind = prim[0]
    if kind == "limb":
        _, p0, p1, r0, r1 = prim
        return (
            min(p0[0] - r0, p1[0] - r1),
            min(p0[1] - r0, p1[1] - r1),
            max(p0[0] + r0, p1[0] + r1),
            max(p0[1] + r0, p1[1] + r1),
        )
    if kind == "ellipse":
        _, c, (a, b), angle = prim
        t = np.radians(angle)
        ex = np.sqrt((a * np.cos(t)) ** 2 + (b * np.sin(t)) ** 2)
        ey = np.sqrt((a * np.sin(t)) ** 2 + (b * np.cos(t)) ** 2)
        return (c[0] - ex, c[1] - ey, c[0] + ex, c[1] + ey)
    pts = prim[1]
    return (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())


def _extent(parts: list[Part]) -> tuple[float, float, float, float]:
    boxes = np.array([primitive_bounds(prim) for part in parts for prim in part.primitives])
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )
