/* Orthanc made as durable as our server, for the benchmark's same-durability comparison.

   Loaded into Orthanc with LD_PRELOAD (bench/durability.py builds it with cc). Orthanc as
   shipped answers a C-STORE Success once the file's data is synced (fdatasync), but
     - its SQLite index runs "PRAGMA SYNCHRONOUS=NORMAL" in WAL mode, so a commit is not synced
       (sqlite.org: such a commit "might roll back following a power loss"), and
     - the new file's name in its folder is never synced (nor the folders it makes).
   Ours answers only once the file's data and name and its index row are on disk. With this
   library Orthanc does the same: its SQLite commits run with SYNCHRONOUS=FULL, and each file
   synced under $PACS_BENCH_DURABLE_DIR has its folder synced after it, as does the parent of
   each folder made there. Nothing else of Orthanc changes. */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct sqlite3 sqlite3;
typedef int (*exec_callback)(void *, int, char **, char **);

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_sqlite3_exec)(sqlite3 *, const char *, exec_callback, void *, char **);

__attribute__((constructor)) static void find_real_functions(void) {
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_mkdir = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "mkdir");
}

static int under_durable_dir(const char *path) {
    const char *dir = getenv("PACS_BENCH_DURABLE_DIR");
    size_t length = dir ? strlen(dir) : 0;
    return length > 0 && strncmp(path, dir, length) == 0 && path[length] == '/';
}

static void sync_parent_folder(const char *path) {
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash == NULL || slash == parent)
        return;
    *slash = '\0';
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        real_fsync(fd);
        close(fd);
    }
}

/* After a regular file under the durable folder was synced: sync its folder (its name). */
static void sync_folder_of(int fd) {
    struct stat status;
    char link[64], path[PATH_MAX];
    if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode))
        return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, sizeof path - 1);
    if (length <= 0)
        return;
    path[length] = '\0';
    if (under_durable_dir(path))
        sync_parent_folder(path);
}

int fdatasync(int fd) {
    int result = real_fdatasync(fd);
    if (result == 0)
        sync_folder_of(fd);
    return result;
}

int fsync(int fd) {
    int result = real_fsync(fd);
    if (result == 0)
        sync_folder_of(fd);
    return result;
}

int mkdir(const char *path, mode_t mode) {
    int result = real_mkdir(path, mode);
    if (result == 0 && under_durable_dir(path))
        sync_parent_folder(path);
    return result;
}

int sqlite3_exec(sqlite3 *db, const char *sql, exec_callback callback, void *argument, char **error) {
    static const char normal[] = "SYNCHRONOUS=NORMAL", full[] = "SYNCHRONOUS=FULL";
    if (real_sqlite3_exec == NULL)
        real_sqlite3_exec = (int (*)(sqlite3 *, const char *, exec_callback, void *, char **))dlsym(RTLD_NEXT, "sqlite3_exec");
    const char *found = sql ? strcasestr(sql, normal) : NULL;
    if (found == NULL)
        return real_sqlite3_exec(db, sql, callback, argument, error);
    size_t before = (size_t)(found - sql), length = strlen(sql);
    char *durable = malloc(length + 1);
    if (durable == NULL)
        return real_sqlite3_exec(db, sql, callback, argument, error);
    memcpy(durable, sql, before);
    strcpy(durable + before, full);
    strcpy(durable + before + sizeof full - 1, found + sizeof normal - 1);
    int result = real_sqlite3_exec(db, durable, callback, argument, error);
    free(durable);
    return result;
}
