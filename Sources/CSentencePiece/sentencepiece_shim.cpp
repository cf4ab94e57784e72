#include "CSentencePiece.h"
#include <sentencepiece_processor.h>
#include <cstring>
#include <string>
#include <vector>

struct csp_processor {
    sentencepiece::SentencePieceProcessor sp;
};

static void set_error(char *error, size_t error_size, const std::string &message) {
    if (!error || error_size == 0) return;
    size_t n = message.size() < error_size - 1 ? message.size() : error_size - 1;
    std::memcpy(error, message.data(), n);
    error[n] = '\0';
}

extern "C" {

csp_processor *csp_load(const char *bytes, size_t size, char *error, size_t error_size) {
    try {
        auto *p = new csp_processor();
        auto status = p->sp.LoadFromSerializedProto(std::string(bytes, size));
        if (!status.ok()) {
            set_error(error, error_size, status.ToString());
            delete p;
            return nullptr;
        }
        return p;
    } catch (const std::exception &e) {
        set_error(error, error_size, e.what());
        return nullptr;
    }
}

void csp_free(csp_processor *p) { delete p; }

int csp_encode(const csp_processor *p, const char *text, size_t text_size,
               int32_t *ids, size_t capacity, size_t *count, char *error, size_t error_size) {
    try {
        std::vector<int> out;
        auto status = p->sp.Encode(std::string(text, text_size), &out);
        if (!status.ok()) { set_error(error, error_size, status.ToString()); return 1; }
        *count = out.size();
        for (size_t i = 0; i < out.size() && i < capacity; i++) ids[i] = out[i];
        return 0;
    } catch (const std::exception &e) {
        set_error(error, error_size, e.what());
        return 1;
    }
}

int csp_decode(const csp_processor *p, const int32_t *ids, size_t n,
               char *text, size_t capacity, size_t *length, char *error, size_t error_size) {
    try {
        std::vector<int> in(ids, ids + n);
        int size = p->sp.GetPieceSize();
        for (int id : in) {
            if (id < 0 || id >= size) { set_error(error, error_size, "id " + std::to_string(id) + " out of range"); return 1; }
        }
        std::string out;
        auto status = p->sp.Decode(in, &out);
        if (!status.ok()) { set_error(error, error_size, status.ToString()); return 1; }
        *length = out.size();
        if (out.size() <= capacity) std::memcpy(text, out.data(), out.size());
        return 0;
    } catch (const std::exception &e) {
        set_error(error, error_size, e.what());
        return 1;
    }
}

int32_t csp_vocab_size(const csp_processor *p) { return p->sp.GetPieceSize(); }
int32_t csp_bos_id(const csp_processor *p) { return p->sp.bos_id(); }
int32_t csp_eos_id(const csp_processor *p) { return p->sp.eos_id(); }
int32_t csp_unk_id(const csp_processor *p) { return p->sp.unk_id(); }
int32_t csp_pad_id(const csp_processor *p) { return p->sp.pad_id(); }

int32_t csp_piece_to_id(const csp_processor *p, const char *piece, size_t size) {
    return p->sp.PieceToId(std::string(piece, size));
}

const char *csp_id_to_piece(const csp_processor *p, int32_t id, size_t *size) {
    if (id < 0 || id >= p->sp.GetPieceSize()) return nullptr;
    const std::string &s = p->sp.IdToPiece(id);
    *size = s.size();
    return s.data();
}

int csp_is_control(const csp_processor *p, int32_t id) {
    if (id < 0 || id >= p->sp.GetPieceSize()) return 0;
    return p->sp.IsControl(id) ? 1 : 0;
}

int csp_is_byte(const csp_processor *p, int32_t id) {
    if (id < 0 || id >= p->sp.GetPieceSize()) return 0;
    return p->sp.IsByte(id) ? 1 : 0;
}

}
