"""DICOMweb (PS3.18) under the archive's access rules: QIDO-RS, WADO-RS and STOW-RS at
/dicomweb/, WADO-URI at /wado, and OHIF v3 served at /viewer/ against them.

- auth.py: who is asking (session, API token, HTTP Basic);
- qido.py: searches, through the C-FIND query code (pacsone/dicom/query.py), from the index and
  the stored headers only;
- wado.py, frames.py, part10.py: retrieve (multipart/related), metadata, frames, rendered images;
- stow.py: store, through the one ingest path;
- wado_uri.py: the single-object URI form;
- viewer.py: OHIF's built files and its configuration.
Every study is reached through pacsone/access.py; a study the caller may not see does not exist.
"""
