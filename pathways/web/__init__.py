"""Server-rendered dashboard pages (/dashboard/): adherence, overdue work, a patient's board, the audit log."""
