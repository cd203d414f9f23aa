"""Synthetic multi-person scenes with exact occlusion labels (the ``occlupose synth`` benchmark).

* :mod:`~occlupose.data.synthetic.poses`: articulated people (joint angles, views,
  orthographic projection, self-occlusion rules);
* :mod:`~occlupose.data.synthetic.render`: owner-buffer rasterisation, textures and
  keypoint visibility read off the rendering;
* :mod:`~occlupose.data.synthetic.scene`: occlusion levels, layouts, :func:`render_scene`;
* :mod:`~occlupose.data.synthetic.annotations`: COCO/CrowdPose entries, crowd index,
  occlusion-rate histograms;
* :mod:`~occlupose.data.synthetic.generate`: :func:`generate_dataset` writes a folder.

Example::

    image, people, level = render_scene(seed, size=256, occlusion="medium")
    json_path = generate_dataset("synth_val", num_images=500, seed=0, format="crowdpose")
"""

from occlupose.data.synthetic.annotations import (
    crowd_index,
    occlusion_histogram,
    occlusion_rate,
    person_annotation,
)
from occlupose.data.synthetic.generate import generate_dataset
from occlupose.data.synthetic.poses import POINT_NAMES, Body, Pose, articulate, sample_pose
from occlupose.data.synthetic.render import (
    Occluder,
    RenderedPerson,
    SyntheticScene,
    compose_scene,
)
from occlupose.data.synthetic.scene import (
    OCCLUSION_CHOICES,
    OCCLUSION_LEVELS,
    OcclusionLevel,
    image_rng,
    render_image,
    render_scene,
)

__all__ = [
    "OCCLUSION_CHOICES",
    "OCCLUSION_LEVELS",
    "POINT_NAMES",
    "Body",
    "Occluder",
    "OcclusionLevel",
    "Pose",
    "RenderedPerson",
    "SyntheticScene",
    "articulate",
    "compose_scene",
    "crowd_index",
    "generate_dataset",
    "image_rng",
    "occlusion_histogram",
    "occlusion_rate",
    "person_annotation",
    "render_image",
    "render_scene",
    "sample_pose",
]
