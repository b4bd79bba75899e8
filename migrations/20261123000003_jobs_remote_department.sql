-- What ATS APIs say and job boards' HTML rarely does: remote or not, and the department.
ALTER TABLE jobs ADD COLUMN is_remote BOOLEAN, ADD COLUMN department TEXT;
