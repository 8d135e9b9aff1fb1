/* Faasm's migration point. A function on fwasm is never migrated, so a migration point
 * returns at once and the function carries on where it is. */
#ifndef FAASM_MIGRATE_H
#define FAASM_MIGRATE_H

#include "faasm/host_interface.h"

typedef void (*FaasmMigrateEntryPoint)(int);

#endif /* FAASM_MIGRATE_H */
