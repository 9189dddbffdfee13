"""The DICOM network engine: PDUs, DIMSE messages, negotiation, sending. Importable without Django."""
