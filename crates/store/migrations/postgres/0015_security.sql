-- Senders bound to where they come from and to their IPP's assigning authority:
-- the authority their PID-3 (PI) may carry besides the territory's OID, the
-- source addresses allowed to speak as them over plain MLLP (comma-separated
-- addresses or CIDR blocks; loopback always), and the subject (CN) of the
-- client certificate they present over MLLP/TLS.
ALTER TABLE hl7_senders ADD COLUMN ipp_authority TEXT;
ALTER TABLE hl7_senders ADD COLUMN allowed_addresses TEXT NOT NULL DEFAULT '';
ALTER TABLE hl7_senders ADD COLUMN tls_subject TEXT;
