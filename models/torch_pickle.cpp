#include "models/torch_pickle.h"

#include <cstring>
#include <unordered_map>

#include "tensor/error.h"

namespace cudl::torch_pickle {

namespace {

struct StorageName {
  const char* name;
  RawType type;
};
constexpr StorageName kStorages[] = {
    {"FloatStorage", RawType::kF32},     {"HalfStorage", RawType::kF16},
    {"BFloat16Storage", RawType::kBF16}, {"DoubleStorage", RawType::kF64},
    {"LongStorage", RawType::kI64},      {"IntStorage", RawType::kI32},
    {"ShortStorage", RawType::kI16},     {"CharStorage", RawType::kI8},
    {"ByteStorage", RawType::kU8},       {"BoolStorage", RawType::kBool},
};

// The globals a state dict needs, and nothing that can run code.
enum class Global {
  kOrderedDict,
  kRebuildTensorV2,
  kRebuildParameter,
  kRebuildParameterWithState,
  kStorage
};

const char* kAllowed =
    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, "
    "torch._utils._rebuild_parameter_with_state and the torch.*Storage types";

// A hostile file must not make us build an unbounded number of objects: a state dict needs a
// few dozen per tensor.
constexpr size_t kMaxObjects = 1'000'000;

// Opcodes (pickletools names).
enum Op : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  BININT = 'J',
  BININT1 = 'K',
  BININT2 = 'M',
  NONE = 'N',
  BINPERSID = 'Q',
  REDUCE = 'R',
  BINUNICODE = 'X',
  EMPTY_LIST = ']',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  APPENDS = 'e',
  BINGET = 'h',
  LONG_BINGET = 'j',
  LIST = 'l',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  SETITEMS = 'u',
  EMPTY_DICT = '}',
  EMPTY_TUPLE = ')',
  BINFLOAT = 'G',
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  PROTO = 0x80,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
};

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& where)
      : p_(data), size_(size), where_(where) {}

  Unpickled run() {
    while (true) {
      CUDL_CHECK(pos_ < size_, where_, ": the pickle ends without a STOP opcode (truncated)");
      op_at_ = pos_;
      uint8_t op = p_[pos_++];
      if (op == STOP) break;
      step(op);
    }
    CUDL_CHECK(!stack_.empty(), where_, ": the pickle stops with an empty stack");
    out_.root = stack_.back();
    return std::move(out_);
  }

 private:
  // ---- input ----
  const uint8_t* take(size_t n) {
    CUDL_CHECK(n <= size_ - pos_, where_, ": the pickle is truncated (opcode at byte ", op_at_,
               " needs ", n, " more bytes)");
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  uint64_t le(size_t n) {
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(b[k]) << (8 * k);
    return v;
  }
  std::string line() {
    const uint8_t* start = p_ + pos_;
    const void* nl = std::memchr(start, '\n', size_ - pos_);
    CUDL_CHECK(nl, where_, ": the pickle is truncated (GLOBAL at byte ", op_at_, ")");
    size_t n = static_cast<const uint8_t*>(nl) - start;
    pos_ += n + 1;
    return std::string(reinterpret_cast<const char*>(start), n);
  }

  // ---- objects ----
  Value* make(Value::Kind k) {
    CUDL_CHECK(out_.arena.size() < kMaxObjects, where_, ": the pickle builds more than ",
               kMaxObjects, " objects; a state dict needs far fewer");
    out_.arena.push_back(std::make_unique<Value>());
    out_.arena.back()->kind = k;
    return out_.arena.back().get();
  }
  Value* make_int(int64_t v) {
    Value* x = make(Value::Kind::kInt);
    x->i = v;
    return x;
  }
  Value* make_string(Value::Kind k, size_t n) {
    Value* x = make(k);
    const uint8_t* b = take(n);
    x->s.assign(reinterpret_cast<const char*>(b), n);
    return x;
  }

  // ---- stack ----
  [[noreturn]] void bad(const std::string& what) {
    CUDL_THROW(where_, ": unexpected pickle content at byte ", op_at_, ": ", what);
  }
  Value* pop() {
    if (stack_.empty() || (!marks_.empty() && marks_.back() == stack_.size()))
      bad("an opcode needs a value but the stack is empty");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.empty() || (!marks_.empty() && marks_.back() == stack_.size()))
      bad("an opcode needs a value but the stack is empty");
    return stack_.back();
  }
  std::vector<Value*> pop_to_mark() {
    if (marks_.empty()) bad("an opcode needs a MARK but there is none");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void push(Value* v) { stack_.push_back(v); }
  Value* tuple(std::vector<Value*> items) {
    Value* t = make(Value::Kind::kTuple);
    t->items = std::move(items);
    return t;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  Value* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) bad(str("memo entry ", index, " is read before it is written"));
    return it->second;
  }

  // ---- globals ----
  Value* global(const std::string& module, const std::string& name) {
    std::string full = module + "." + name;
    Value* g = make(Value::Kind::kGlobal);
    g->s = full;
    if (full == "collections.OrderedDict") {
      g->i = static_cast<int64_t>(Global::kOrderedDict);
    } else if (full == "torch._utils._rebuild_tensor_v2") {
      g->i = static_cast<int64_t>(Global::kRebuildTensorV2);
    } else if (full == "torch._utils._rebuild_parameter") {
      g->i = static_cast<int64_t>(Global::kRebuildParameter);
    } else if (full == "torch._utils._rebuild_parameter_with_state") {
      g->i = static_cast<int64_t>(Global::kRebuildParameterWithState);
    } else {
      bool storage = false;
      if (module == "torch") {
        for (const StorageName& s : kStorages) {
          if (name == s.name) {
            g->i = static_cast<int64_t>(Global::kStorage);
            g->storage_type = s.type;
            storage = true;
          }
        }
      }
      if (!storage) {
        // Printable form only: the name comes from the file.
        std::string shown;
        for (char c : full) shown += (c >= 32 && c < 127) ? c : '?';
        if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
        CUDL_THROW(where_, ": refusing to load global '", shown, "' (byte ", op_at_,
                   "): a weights file may only use ", kAllowed,
                   ". Nothing from the file was run. (A whole model saved with torch.save(model) "
                   "also lands here: save model.state_dict() instead.)");
      }
    }
    return g;
  }

  static bool is(const Value* v, Value::Kind k) { return v && v->kind == k; }

  std::vector<int64_t> int_tuple(const Value* v, const char* what) {
    if (!is(v, Value::Kind::kTuple)) bad(str(what, " should be a tuple of integers"));
    std::vector<int64_t> out;
    for (const Value* x : v->items) {
      if (!is(x, Value::Kind::kInt)) bad(str(what, " should be a tuple of integers"));
      out.push_back(x->i);
    }
    return out;
  }

  Value* reduce(Value* callable, Value* args) {
    if (!is(callable, Value::Kind::kGlobal))
      bad("REDUCE applied to something that is not a global");
    if (!is(args, Value::Kind::kTuple)) bad("REDUCE arguments are not a tuple");
    const std::vector<Value*>& a = args->items;
    switch (static_cast<Global>(callable->i)) {
      case Global::kOrderedDict:
        if (!a.empty()) bad("collections.OrderedDict called with arguments");
        return make(Value::Kind::kDict);
      case Global::kRebuildTensorV2: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.size() != 6 && a.size() != 7)
          bad(str("_rebuild_tensor_v2 called with ", a.size(), " arguments (6 or 7 expected)"));
        if (!is(a[0], Value::Kind::kStorage))
          bad("_rebuild_tensor_v2: the first argument is not a storage");
        if (!is(a[1], Value::Kind::kInt))
          bad("_rebuild_tensor_v2: the storage offset is not an integer");
        Value* t = make(Value::Kind::kTensor);
        t->storage = a[0];
        t->offset = a[1]->i;
        t->sizes = int_tuple(a[2], "_rebuild_tensor_v2: the size");
        t->strides = int_tuple(a[3], "_rebuild_tensor_v2: the stride");
        if (t->sizes.size() != t->strides.size())
          bad(str("_rebuild_tensor_v2: ", t->sizes.size(), " sizes but ", t->strides.size(),
                  " strides"));
        return t;
      }
      case Global::kRebuildParameter:
      case Global::kRebuildParameterWithState:
        // (data, requires_grad, backward_hooks[, state]): the parameter is its data here.
        if (a.size() < 3 || a.size() > 4 || !is(a[0], Value::Kind::kTensor))
          bad(str(callable->s, " called with unexpected arguments"));
        return a[0];
      case Global::kStorage:
        bad(str("the storage type ", callable->s,
                " is called; PyTorch only names it in a "
                "persistent id"));
    }
    bad("unknown global");
  }

  Value* persistent_load(Value* pid) {
    // ('storage', storage_type, key, location, numel)
    if (!is(pid, Value::Kind::kTuple) || pid->items.size() != 5 ||
        !is(pid->items[0], Value::Kind::kString) || pid->items[0]->s != "storage")
      bad("a persistent id that is not ('storage', type, key, location, numel)");
    const std::vector<Value*>& a = pid->items;
    if (!is(a[1], Value::Kind::kGlobal) || static_cast<Global>(a[1]->i) != Global::kStorage)
      bad("a persistent id whose storage type is not a torch.*Storage");
    if (!is(a[2], Value::Kind::kString) || !is(a[3], Value::Kind::kString) ||
        !is(a[4], Value::Kind::kInt))
      bad("a persistent id with a malformed key, location or size");
    Value* s = make(Value::Kind::kStorage);
    s->storage_type = a[1]->storage_type;
    s->storage_key = a[2]->s;
    s->location = a[3]->s;
    s->storage_numel = a[4]->i;
    return s;
  }

  void set_items(Value* dict, const std::vector<Value*>& kv) {
    if (!is(dict, Value::Kind::kDict)) bad("SETITEM(S) on something that is not a dict");
    if (kv.size() % 2) bad("SETITEMS with an odd number of values");
    for (size_t k = 0; k < kv.size(); k += 2) dict->dict.emplace_back(kv[k], kv[k + 1]);
  }

  void append_items(Value* list, const std::vector<Value*>& items) {
    if (!is(list, Value::Kind::kList)) bad("APPEND(S) on something that is not a list");
    list->items.insert(list->items.end(), items.begin(), items.end());
  }

  void step(uint8_t op) {
    switch (op) {
      case PROTO: {
        uint64_t v = le(1);
        if (v > 5) bad(str("pickle protocol ", v, " (at most 5 is known)"));
        break;
      }
      case FRAME:
        le(8);
        break;  // frames only group bytes; we hold them all already
      case MARK:
        marks_.push_back(stack_.size());
        break;
      case POP:
        pop();
        break;
      case POP_MARK:
        pop_to_mark();
        break;
      case DUP:
        push(top());
        break;
      case NONE:
        push(make(Value::Kind::kNone));
        break;
      case NEWTRUE:
      case NEWFALSE: {
        Value* v = make(Value::Kind::kBool);
        v->b = op == NEWTRUE;
        push(v);
        break;
      }
      case BININT:
        push(make_int(static_cast<int32_t>(le(4))));
        break;
      case BININT1:
        push(make_int(static_cast<int64_t>(le(1))));
        break;
      case BININT2:
        push(make_int(static_cast<int64_t>(le(2))));
        break;
      case LONG1: {
        uint64_t n = le(1);
        if (n > 8) bad(str("an integer of ", n, " bytes (at most 8 supported)"));
        uint64_t v = n ? le(n) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ull << (8 * n);  // sign-extend
        push(make_int(static_cast<int64_t>(v)));
        break;
      }
      case BINFLOAT: {
        const uint8_t* b = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];  // big-endian
        Value* v = make(Value::Kind::kFloat);
        std::memcpy(&v->f, &bits, 8);
        push(v);
        break;
      }
      case SHORT_BINUNICODE:
        push(make_string(Value::Kind::kString, le(1)));
        break;
      case BINUNICODE:
        push(make_string(Value::Kind::kString, le(4)));
        break;
      case BINUNICODE8:
        push(make_string(Value::Kind::kString, le(8)));
        break;
      case SHORT_BINBYTES:
        push(make_string(Value::Kind::kBytes, le(1)));
        break;
      case BINBYTES:
        push(make_string(Value::Kind::kBytes, le(4)));
        break;
      case BINBYTES8:
        push(make_string(Value::Kind::kBytes, le(8)));
        break;
      case EMPTY_TUPLE:
        push(tuple({}));
        break;
      case TUPLE:
        push(tuple(pop_to_mark()));
        break;
      case TUPLE1: {
        Value* a = pop();
        push(tuple({a}));
        break;
      }
      case TUPLE2: {
        Value* b = pop();
        Value* a = pop();
        push(tuple({a, b}));
        break;
      }
      case TUPLE3: {
        Value* c = pop();
        Value* b = pop();
        Value* a = pop();
        push(tuple({a, b, c}));
        break;
      }
      case EMPTY_LIST:
        push(make(Value::Kind::kList));
        break;
      case LIST: {
        std::vector<Value*> items = pop_to_mark();
        Value* l = make(Value::Kind::kList);
        l->items = std::move(items);
        push(l);
        break;
      }
      case APPEND: {
        Value* v = pop();
        append_items(top(), {v});
        break;
      }
      case APPENDS: {
        std::vector<Value*> items = pop_to_mark();
        append_items(top(), items);
        break;
      }
      case EMPTY_DICT:
        push(make(Value::Kind::kDict));
        break;
      case DICT: {
        std::vector<Value*> kv = pop_to_mark();
        Value* d = make(Value::Kind::kDict);
        set_items(d, kv);
        push(d);
        break;
      }
      case SETITEM: {
        Value* v = pop();
        Value* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case SETITEMS: {
        std::vector<Value*> kv = pop_to_mark();
        set_items(top(), kv);
        break;
      }
      case GLOBAL: {
        std::string module = line();
        std::string name = line();
        push(global(module, name));
        break;
      }
      case STACK_GLOBAL: {
        Value* name = pop();
        Value* module = pop();
        if (!is(name, Value::Kind::kString) || !is(module, Value::Kind::kString))
          bad("STACK_GLOBAL with a module or name that is not a string");
        push(global(module->s, name->s));
        break;
      }
      case REDUCE: {
        Value* args = pop();
        Value* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case BUILD: {
        pop();  // the state: OrderedDict attributes (_metadata) or a parameter's __dict__
        Value* obj = top();
        if (!is(obj, Value::Kind::kDict) && !is(obj, Value::Kind::kTensor))
          bad(str("BUILD on a ", obj->kind_name(), " (only dicts and tensors are expected)"));
        break;
      }
      case BINPERSID:
        push(persistent_load(pop()));
        break;
      case BINPUT:
        memo_put(le(1));
        break;
      case LONG_BINPUT:
        memo_put(le(4));
        break;
      case MEMOIZE:
        memo_put(memo_.size());
        break;
      case BINGET:
        push(memo_get(le(1)));
        break;
      case LONG_BINGET:
        push(memo_get(le(4)));
        break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        CUDL_THROW(where_, ": unsupported pickle opcode ", hex, " at byte ", op_at_,
                   " (PyTorch does not write it in a state dict; nothing was run)");
      }
    }
  }

  const uint8_t* p_;
  size_t size_;
  std::string where_;
  size_t pos_ = 0, op_at_ = 0;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  Unpickled out_;
};

}  // namespace

const char* storage_type_name(RawType t) {
  for (const StorageName& s : kStorages)
    if (s.type == t) return s.name;
  return "?Storage";
}

const char* Value::kind_name() const {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

Unpickled unpickle(const uint8_t* data, size_t size, const std::string& where) {
  return Machine(data, size, where).run();
}

}  // namespace cudl::torch_pickle
