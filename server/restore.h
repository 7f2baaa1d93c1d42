/*
 * Backing up and restoring the service's database (review r15ops H1, L5; docs/operations.md,
 * "Backing up and restoring"). A restored database is older than the service: the
 * revocations made since the backup are undone in it (system and tenant tokens revoked, devices
 * blocked, certificates revoked), and its nonce epoch and devices' targets versions went back.
 * So a restore is finished by the post-restore step, which redoes what can be redone (a new
 * nonce epoch, a new system token) and says what cannot (the revocations since the backup's
 * time), and the service refuses to serve a data directory whose restore did not finish.
 *
 * rampart-server backup --data-dir DIR OUT: SQLite's online backup of the service's database
 * (the service may run), into OUT, written 0600 through a temporary, fsynced, and linked in:
 * an existing OUT is refused. It records its time in the copy (schema 33), which the restore
 * says.
 *
 * rampart-server restore --data-dir DIR FILE: FILE (a Rampart SQLite database of this schema or
 * an older one, whole: SQLite's quick_check) made the service's database, with no server of it
 * serving and none starting until it ends (rp_hold_restore: hold.h), crash-safe:
 * DIR/restore.pending is written first, the database replaced is kept beside it
 * (rampart.db.replaced-TIME), its -wal and -shm are gone before the new file is renamed in, and
 * the post-restore step runs; the marker goes last.
 *
 * rampart-server restored --data-dir DIR [--database URI]: the post-restore step alone, after a
 * restore the service did not make (pg_restore for PostgreSQL) or one interrupted. Replicas may
 * run (on PostgreSQL they should not serve the restored database before it). Run again on
 * another replica's directory once it has run (its restore epoch later than that directory saw:
 * that replica has not started since), it redoes nothing: it brings DIR/generation up to the
 * database's and says so.
 *
 * restore sweeps, under its hold, the temporaries cut commands left: the database's copy,
 * restore.pending's and generation's (review r16 L2); admin.token's go whenever its lock is taken
 * (a start, a rotation, restored).
 */
#ifndef RAMPART_SERVER_RESTORE_H
#define RAMPART_SERVER_RESTORE_H

#include "context.h"
#include "store.h"

/* The rotation of the system token (main.c's --rotate-admin-token), called by the post-restore
 * step so that it has one owner. */
typedef rp_err_t (*rp_rotate_fn)(const rp_server_t *srv);

/* The commands; their exit status (0 done, 1 refused or failed: logged, with what was done). */
int rp_backup_command(const rp_server_t *srv, const char *out);
int rp_restore_command(const rp_server_t *srv, const char *file, rp_rotate_fn rotate);
int rp_restored_command(const rp_server_t *srv, rp_rotate_fn rotate);

/* At start: RP_ERR_EXISTS (logged, naming `rampart-server restored`, or `restore` again when the
 * restore was cut with the database set aside) while DIR/restore.pending says a restore has not
 * finished; else RP_OK. */
rp_err_t rp_restore_check(const rp_server_t *srv) RP_MUST_CHECK;
/*
 * At start, with the database open: RP_ERR_EXISTS (logged, naming `rampart-server restored`)
 * when its generation (store.h: rp_store_generation) is below DIR/generation's, the last this
 * directory saw: a backup put back by hand (or another database); else the generation's count is
 * raised and written to DIR/generation. The generation is a restore epoch (raised by `restored`
 * alone) above a count (restore.c): `restored`, on any replica, puts the database above every
 * data directory's. Every raise but `restored`'s (the start's, backup's, a revocation's) is
 * refused, with the same message, while the database is the older (review r16 H1). Backups
 * taken by `rampart-server backup`, and by anything after a start, are older than the database
 * they were taken from by this.
 */
rp_err_t rp_restore_start(const char *data_dir, rp_store_t *store) RP_MUST_CHECK;
/* After a revocation (a token revoked, a device blocked, the system token rotated): the
 * generation raised, in the database and DIR/generation, so that a backup taken before it and
 * put back by hand is refused at start; refused (said) while the database is the older. A failure
 * is logged; the revocation stands. */
void rp_restore_mark(const char *data_dir, rp_store_t *store);

#endif /* RAMPART_SERVER_RESTORE_H */
