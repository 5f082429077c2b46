-- Whose message it is: the establishment whose settings (SMTP sender address,
-- MHD credentials) deliver it. NULL: the instance's configuration.
ALTER TABLE outbox ADD COLUMN establishment_id TEXT;
-- The e-mail address a one-time link confirms: a patient's invitation sent by
-- mail, or an address the patient gave on the portal. It becomes the address
-- notices go to only when the link is followed.
ALTER TABLE invitations ADD COLUMN email TEXT;
