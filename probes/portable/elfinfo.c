#define _GNU_SOURCE
#include "elfinfo.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PHDRS 64
#define MAX_DYN 4096

static int read_at(FILE *f, long off, void *buf, size_t len)
{
    return fseek(f, off, SEEK_SET) == 0 && fread(buf, len, 1, f) == 1;
}

/* A string of the dynamic string table, found through the PT_LOAD that maps its address. */
static void read_str(FILE *f, const Elf64_Phdr *ph, int n, Elf64_Addr strtab, Elf64_Xword off,
                     char *out, size_t outlen)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (ph[i].p_type != PT_LOAD || strtab < ph[i].p_vaddr
            || strtab >= ph[i].p_vaddr + ph[i].p_filesz)
            continue;
        if (fseek(f, (long)(ph[i].p_offset + (strtab - ph[i].p_vaddr) + off), SEEK_SET) != 0)
            return;
        if (fgets(out, (int)outlen, f) == NULL) /* a string table's strings hold no '\n' */
            out[0] = '\0';
        out[strcspn(out, "\n")] = '\0';
        return;
    }
}

static const char *kind_of(mode_t mode)
{
    return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket"
         : S_ISCHR(mode) ? "a character device" : S_ISBLK(mode) ? "a block device" : "not a file";
}

FILE *open_regular(const char *path, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    FILE *f;

    if (fd < 0) {
        snprintf(why, whylen, "%s", errno == ENOENT ? "absent" : strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file: %s", kind_of(st.st_mode));
        close(fd);
        return NULL;
    }
    /* a regular file never blocks; reads then behave as usual */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || (f = fdopen(fd, "rb")) == NULL) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    why[0] = '\0';
    return f;
}

int elfinfo_read(const char *path, struct elfinfo *info)
{
    FILE *f;
    Elf64_Ehdr eh;
    Elf64_Phdr ph[MAX_PHDRS];
    int nph = 0;
    Elf64_Addr strtab = 0;
    Elf64_Xword runpath = (Elf64_Xword)-1, rpath = (Elf64_Xword)-1, soname = (Elf64_Xword)-1;
    Elf64_Xword needed[ELFINFO_MAX_NEEDED];
    char why[120];

    memset(info, 0, sizeof(*info));
    if ((f = open_regular(path, why, sizeof(why))) == NULL) {
        snprintf(info->error, sizeof(info->error), "cannot open: %s", why);
        return -1;
    }
    if (!read_at(f, 0, &eh, sizeof(eh)) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        snprintf(info->error, sizeof(info->error), "not an ELF file");
        goto out;
    }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
        snprintf(info->error, sizeof(info->error), "not a 64-bit ELF file");
        goto out;
    }
    info->machine = eh.e_machine;
    info->is_dyn = eh.e_type == ET_DYN;
    nph = eh.e_phnum < MAX_PHDRS ? eh.e_phnum : MAX_PHDRS;
    for (int i = 0; i < nph; i++)
        if (!read_at(f, (long)(eh.e_phoff + (Elf64_Off)i * sizeof(Elf64_Phdr)), &ph[i], sizeof(ph[i]))) {
            snprintf(info->error, sizeof(info->error), "program headers cut short");
            goto out;
        }
    for (int i = 0; i < nph; i++) {
        if (ph[i].p_type == PT_INTERP) {
            size_t len = ph[i].p_filesz < sizeof(info->interp) ? ph[i].p_filesz : sizeof(info->interp) - 1;

            if (read_at(f, (long)ph[i].p_offset, info->interp, len))
                info->interp[len] = '\0';
            info->interp[sizeof(info->interp) - 1] = '\0';
        }
        if (ph[i].p_type != PT_DYNAMIC)
            continue;
        info->has_dynamic = 1;
        for (Elf64_Xword off = 0, k = 0; off + sizeof(Elf64_Dyn) <= ph[i].p_filesz && k < MAX_DYN;
             off += sizeof(Elf64_Dyn), k++) {
            Elf64_Dyn d;

            if (!read_at(f, (long)(ph[i].p_offset + off), &d, sizeof(d)) || d.d_tag == DT_NULL)
                break;
            switch (d.d_tag) {
            case DT_STRTAB: strtab = d.d_un.d_ptr; break;
            case DT_RUNPATH: runpath = d.d_un.d_val; break;
            case DT_RPATH: rpath = d.d_un.d_val; break;
            case DT_SONAME: soname = d.d_un.d_val; break;
            case DT_FLAGS_1: info->nodelete = (d.d_un.d_val & DF_1_NODELETE) != 0; break;
            case DT_NEEDED:
                if (info->n_needed < ELFINFO_MAX_NEEDED)
                    needed[info->n_needed++] = d.d_un.d_val;
                break;
            default: break;
            }
        }
    }
    if (info->has_dynamic && strtab != 0) {
        if (runpath != (Elf64_Xword)-1)
            read_str(f, ph, nph, strtab, runpath, info->runpath, sizeof(info->runpath));
        if (rpath != (Elf64_Xword)-1)
            read_str(f, ph, nph, strtab, rpath, info->rpath, sizeof(info->rpath));
        if (soname != (Elf64_Xword)-1)
            read_str(f, ph, nph, strtab, soname, info->soname, sizeof(info->soname));
        for (int i = 0; i < info->n_needed; i++)
            read_str(f, ph, nph, strtab, needed[i], info->needed[i], sizeof(info->needed[i]));
    }
out:
    fclose(f);
    return info->error[0] == '\0' ? 0 : -1;
}
