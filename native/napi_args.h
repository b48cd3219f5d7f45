// Typed N-API argument unpacking for the addon's entry points (plain C node_api.h).
//
// An entry point lists its positional arguments once, each as arg("name", variable[, bound]); the
// variable's C++ type says how the JS value is read and checked:
//
//   long                 integer in [bound, 2^40] (bound defaults to 0)
//   int                  op code in [0, bound]
//   float, double        number
//   bool                 boolean
//   F32 I32 U8 U16       Float32Array / Int32Array / Uint8Array / Uint16Array (.p data, .n elements)
//   F32n I32n U8n        the same, or null/undefined (then .p == nullptr, .n == 0)
//
// and opt("name", variable) marks a trailing argument that may be missing or undefined (the
// variable keeps its value then). Example:
//
//   napi_value Softmax(napi_env env, napi_callback_info info) {
//     Call c(env, info, "softmax");
//     F32 x, out; long rows, cols; bool lg;
//     TRY(c.args(arg("x", x), arg("out", out), arg("rows", rows), arg("cols", cols), arg("log", lg)));
//     TRY(c.need("x", x, double(rows) * cols));
//     ...
//
// A wrong type throws a TypeError naming the function and the argument; a bad range or a too-short
// array a RangeError; every check returns false with the exception pending (TRY returns nullptr).
// Why a helper and not node-addon-api: see docs/design.md ("N-API glue").
#pragma once
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace tfree {
namespace napi {

template <class T, bool Nullable = false>
struct Arr {
  T* p = nullptr;
  long n = 0;  // elements
};
using F32 = Arr<float>;
using F32n = Arr<float, true>;
using I32 = Arr<int32_t>;
using I32n = Arr<int32_t, true>;
using U8 = Arr<uint8_t>;
using U8n = Arr<uint8_t, true>;
using U16 = Arr<uint16_t>;
using F64 = Arr<double>;
using F64n = Arr<double, true>;

template <class T>
struct Arg {
  const char* name;
  T& v;
  long bound;
  bool optional;
};
template <class T>
Arg<T> arg(const char* name, T& v, long bound = 0) {
  return {name, v, bound, false};
}
template <class T>
Arg<T> opt(const char* name, T& v) {
  return {name, v, 0, true};
}

template <class T>
struct TypedArrayKind;
template <>
struct TypedArrayKind<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct TypedArrayKind<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};
template <>
struct TypedArrayKind<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};
template <>
struct TypedArrayKind<uint16_t> {
  static constexpr napi_typedarray_type type = napi_uint16_array;
  static constexpr const char* name = "Uint16Array";
};
template <>
struct TypedArrayKind<double> {
  static constexpr napi_typedarray_type type = napi_float64_array;
  static constexpr const char* name = "Float64Array";
};

class Call {
 public:
  static constexpr size_t kMaxArgs = 32;
  napi_env env;
  const char* fn;
  napi_value argv[kMaxArgs];
  size_t argc = kMaxArgs;

  Call(napi_env e, napi_callback_info info, const char* name) : env(e), fn(name) {
    if (napi_get_cb_info(e, info, &argc, argv, nullptr, nullptr) != napi_ok) argc = 0;
  }

  // At least `want` arguments were passed.
  bool arity(size_t want) {
    if (argc >= want) return true;
    char msg[160];
    std::snprintf(msg, sizeof msg, "tfree native %s: expected %zu arguments, got %zu", fn, want, argc);
    napi_throw_type_error(env, "ERR_MISSING_ARGS", msg);
    return false;
  }

  // Reads all arguments in order from position 0; the required ones must all be present.
  template <class... T>
  bool args(const Arg<T>&... a) {
    size_t required = 0;
    ((required += a.optional ? 0 : 1), ...);
    return arity(required) && args_from(0, a...);
  }
  // Reads the arguments from position `first` on (arity checked by the caller).
  template <class... T>
  bool args_from(size_t first, const Arg<T>&... a) {
    size_t i = first;
    return (read_one(i++, a) && ...);
  }

  bool type_error(const char* name, const char* what) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "tfree native %s: argument '%s' must be %s", fn, name, what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  // printf-style RangeError "tfree native <fn>: <message>"
  template <class... P>
  bool range_error(const char* format, P... p) {
    char msg[256], full[320];
    std::snprintf(msg, sizeof msg, format, p...);
    std::snprintf(full, sizeof full, "tfree native %s: %s", fn, msg);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", full);
    return false;
  }
  // `needed` elements must be available in array `name` of length `have`
  bool need(const char* name, long have, double needed) {
    if (needed <= static_cast<double>(have)) return true;
    return range_error("argument '%s' is too short: needs %.0f elements, has %ld", name, needed, have);
  }
  template <class T, bool N>
  bool need(const char* name, const Arr<T, N>& a, double needed) {
    return need(name, a.n, needed);
  }
  // all ids in [0, rows)
  bool ids_in_range(const char* name, const int32_t* ids, long n, long rows) {
    for (long i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= rows)
        return range_error("argument '%s'[%ld] = %d is out of range [0, %ld)", name, i, ids[i], rows);
    return true;
  }

 private:
  bool missing_or_undefined(size_t i) {
    if (i >= argc) return true;
    napi_valuetype t;
    return napi_typeof(env, argv[i], &t) == napi_ok && t == napi_undefined;
  }
  template <class T>
  bool read_one(size_t i, const Arg<T>& a) {
    if (a.optional && missing_or_undefined(i)) return true;
    return read(i, a);
  }

  bool number(size_t i, const char* name, double& out) {
    if (napi_get_value_double(env, argv[i], &out) != napi_ok) return type_error(name, "a number");
    return true;
  }
  bool read(size_t i, const Arg<double>& a) { return number(i, a.name, a.v); }
  bool read(size_t i, const Arg<float>& a) {
    double d;
    if (!number(i, a.name, d)) return false;
    a.v = static_cast<float>(d);
    return true;
  }
  bool read(size_t i, const Arg<long>& a) {
    double d;
    if (!number(i, a.name, d)) return false;
    if (!(d == std::floor(d)) || d < static_cast<double>(a.bound) || d > 1099511627776.0)
      return range_error("argument '%s' must be an integer >= %ld (got %g)", a.name, a.bound, d);
    a.v = static_cast<long>(d);
    return true;
  }
  bool read(size_t i, const Arg<int>& a) {  // op code
    long v;
    if (!read(i, Arg<long>{a.name, v, 0, false})) return false;
    if (v > a.bound) return range_error("argument '%s' is not a valid op code (0..%ld): %ld", a.name, a.bound, v);
    a.v = static_cast<int>(v);
    return true;
  }
  bool read(size_t i, const Arg<bool>& a) {
    if (napi_get_value_bool(env, argv[i], &a.v) != napi_ok) return type_error(a.name, "a boolean");
    return true;
  }
  template <class T, bool Nullable>
  bool read(size_t i, const Arg<Arr<T, Nullable>>& a) {
    napi_value v = argv[i];
    if (Nullable) {
      napi_valuetype vt;
      if (napi_typeof(env, v, &vt) != napi_ok) return false;
      if (vt == napi_null || vt == napi_undefined) {
        a.v = Arr<T, Nullable>{};
        return true;
      }
    }
    napi_typedarray_type t;
    size_t len = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, v, &t, &len, &data, nullptr, nullptr) != napi_ok ||
        t != TypedArrayKind<T>::type) {
      // napi_get_typedarray_info leaves a pending exception only in rare cases; clear it for ours
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ex;
        napi_get_and_clear_last_exception(env, &ex);
      }
      char what[64];
      std::snprintf(what, sizeof what, Nullable ? "a %s or null" : "a %s", TypedArrayKind<T>::name);
      return type_error(a.name, what);
    }
    a.v.p = static_cast<T*>(data);
    a.v.n = static_cast<long>(len);
    return true;
  }
};

inline napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}
inline napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}
inline napi_value string(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

}  // namespace napi
}  // namespace tfree

#define TRY(x) \
  if (!(x)) return nullptr
