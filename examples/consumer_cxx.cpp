// consumer_cxx.cpp -- proves both public headers, the experimental section
// included, compile as C++ and link.
#define SMDIFF_EXPERIMENTAL
#include <smdiff/smdiff.h>
#include <smdiff/smdiff_decoder.h>

#include <cstdio>

int main() {
    smdiff_softmask *sm = nullptr;
    if (smdiff_softmask_create(&sm) != SMDIFF_OK) return 1;
    double scale = 0;
    int32_t rc = smdiff_softmask_get_double(sm, SMDIFF_SM_SCALE, &scale);
    smdiff_trainer *t = nullptr;
    if (rc == SMDIFF_OK) rc = smdiff_trainer_create(&t);
    if (rc == SMDIFF_OK) rc = smdiff_trainer_set_softmask(t, sm);
    smdiff_trainer_free(t);
    smdiff_softmask_free(sm);
    if (rc != SMDIFF_OK || scale <= 0) return 1;
    smdiff_decoder d = smdiff_decoder();
    d.struct_size = sizeof d;
    d.abi_version = SMDIFF_DECODER_ABI_VERSION;
    std::printf("consumer_cxx: %s, decoder ABI %u\n", smdiff_version_string(), d.abi_version);
    return 0;
}
