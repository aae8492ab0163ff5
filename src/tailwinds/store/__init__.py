"""Storage: tables, migrations and one repository per table."""
