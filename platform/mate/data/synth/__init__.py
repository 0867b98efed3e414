"""The synthetic kinematic corpus (`mate data synth`): procedural motion on HumanML3D's skeleton with captions
whose every motion word has a known kinematic meaning, written in the HumanML3D layout plus ground truth.

Modules: kinematics (FK, two-bone leg IK), channels/feet/motion (controls -> footprints -> joints), locomotion and
gestures (the actions), plan (what a clip contains), vocab/captions (words and sentences), clip (one clip end to
end), pairs (minimal pairs), rules (physical probes), schema (attributes, held-out combinations), corpus (files).
"""

from .corpus import GENERATOR_VERSION, synthesize

__all__ = ["synthesize", "GENERATOR_VERSION"]
