"""Intelligence Gateway: public intake forms (beta applications, contact) and their admin side."""
