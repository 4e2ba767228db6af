"""What digits shows people, shared by the commands: matplotlib figures and annotated photos
(figures.py), rich console tables and markdown/CSV tables (tables.py)."""
