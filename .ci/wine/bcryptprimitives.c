/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Rust programs under Wine.
 *
 * Rust's standard library calls ProcessPrng (bcryptprimitives.dll, Windows 10+) at start-up
 * to seed its hash maps. Wine 8 (Debian 12) has no such export, so every Rust program dies
 * before main. This DLL exports ProcessPrng and fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. Built by .ci/run with mingw-w64; never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
