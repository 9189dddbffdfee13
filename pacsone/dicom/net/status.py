"""Named DIMSE status codes (PS3.7 Annex C, PS3.4 Annex B) used by our SCP handlers."""

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Storage: Refused, out of resources
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # Storage: Error, data set does not match SOP class
CANNOT_UNDERSTAND = 0xC000  # Storage: Error, cannot understand
NOT_AUTHORIZED = 0x0124  # General: Refused, not authorized
SOP_CLASS_NOT_SUPPORTED = 0x0122  # General: Refused, SOP class not supported
UNRECOGNIZED_OPERATION = 0x0211  # General: Unrecognized operation
SERVICE_FAILED = 0xC211  # Failure, unable to process (Cxxx): the service raised (as pynetdicom answers)
# Query/Retrieve (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4)
PENDING = 0xFF00
CANCEL = 0xFE00
MOVE_DESTINATION_UNKNOWN = 0xA801
UNABLE_TO_PROCESS = 0xC000
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
