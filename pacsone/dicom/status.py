"""Named DIMSE status codes (PS3.7 Annex C, PS3.4 Annex B) used by our SCP handlers."""

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Storage: Refused, out of resources
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # Storage: Error, data set does not match SOP class
CANNOT_UNDERSTAND = 0xC000  # Storage: Error, cannot understand
NOT_AUTHORIZED = 0x0124  # General: Refused, not authorized
