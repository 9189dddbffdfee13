"""DICOM network services: SCP handlers per service, SCU client functions, the AE registry."""
