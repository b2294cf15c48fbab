// NumPy's .npz archives: a zip of .npy members (np.savez stores them,
// np.savez_compressed deflates them; zip64 records as NumPy writes them).
// npz_file reads any member, and maps stored ones without a copy; npz_writer
// writes stored members, each aligned to 64 bytes, atomically. Reading the
// directory costs O(members); a member O(its bytes) (inflating through zlib).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zlib.h>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/detail/bytes.hpp"
#include "mint/io/mapped_file.hpp"
#include "mint/io/ndarray.hpp"
#include "mint/io/npy.hpp"

namespace mint {

/// One member of a zip archive, as its central directory describes it (offsets checked).
struct zip_member {
  std::string name;                  ///< member name, e.g. "W_enc.npy"
  std::uint16_t method = 0;          ///< 0 stored, 8 deflated
  std::uint32_t crc32 = 0;           ///< CRC-32 of the uncompressed bytes
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;            ///< uncompressed size
  std::uint64_t data_offset = 0;     ///< where the (compressed) bytes start in the file
};

namespace detail {

inline constexpr std::uint32_t zip_local_signature = 0x04034b50, zip_central_signature = 0x02014b50,
                               zip_end_signature = 0x06054b50, zip64_end_signature = 0x06064b50,
                               zip64_locator_signature = 0x07064b50;
inline constexpr std::uint64_t zip_max_ratio = 1032;  // deflate cannot expand data more than this

/// Reading zip archives. A template (C is always char) so only the units that open an archive
/// compile it, and a program may compile it once (mint/core/compiled.hpp).
template <class C>
struct zip_core {
  /// Reads the central directory of a zip archive; every offset and size is checked against the file.
  static std::vector<zip_member> directory(const mapped_file& file, const char* function);
  /// The uncompressed bytes of a deflated member (CRC checked), or its first `limit` bytes.
  static std::vector<std::byte> inflate(const mapped_file& file, const zip_member& m, const char* function,
                                        std::uint64_t limit = ~std::uint64_t(0));
};

#if MINT_CORE_BODIES
template <class C>
std::vector<zip_member> zip_core<C>::directory(const mapped_file& file, const char* function) {
  const auto bytes = file.bytes();
  byte_reader r(bytes, function, file.name());
  if (bytes.size() < 22) r.fail(str("has ", bytes.size(), " bytes"), "needs a zip archive (at least 22 bytes)");
  // The end record sits in the last 22 + 65535 bytes (after it, only its comment).
  std::uint64_t end = bytes.size() - 22;
  const std::uint64_t lowest = bytes.size() > 22 + 65535 ? bytes.size() - 22 - 65535 : 0;
  for (;; --end) {
    if (load<std::uint32_t>(bytes.data() + end) == zip_end_signature) break;
    if (end == lowest) r.fail("has no end-of-central-directory record", "needs a zip archive (is it truncated?)");
  }
  r.seek(end + 4, "the end record");
  const auto disk = r.read<std::uint16_t>("the end record"), cd_disk = r.read<std::uint16_t>("the end record");
  r.read<std::uint16_t>("the end record");
  std::uint64_t count = r.read<std::uint16_t>("the end record");
  std::uint64_t cd_size = r.read<std::uint32_t>("the end record"), cd_offset = r.read<std::uint32_t>("the end record");
  if (disk != 0 || cd_disk != 0) r.fail("spans several disks", "needs a single-file archive");
  if ((count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) && end >= 20 &&
      load<std::uint32_t>(bytes.data() + end - 20) == zip64_locator_signature) {
    r.seek(end - 20 + 8, "the zip64 locator");
    const auto z64 = r.read<std::uint64_t>("the zip64 locator");
    r.seek(z64, "the zip64 end record");
    if (r.read<std::uint32_t>("the zip64 end record") != zip64_end_signature)
      r.fail(str("has no zip64 end record at offset ", z64), "needs the offset its locator gives");
    r.take(8 + 2 + 2 + 4 + 4 + 8, "the zip64 end record");
    count = r.read<std::uint64_t>("the zip64 end record");
    cd_size = r.read<std::uint64_t>("the zip64 end record");
    cd_offset = r.read<std::uint64_t>("the zip64 end record");
  }
  std::uint64_t cd_end = 0;
  if (add_overflows(cd_offset, cd_size, cd_end) || cd_end > bytes.size())
    r.fail(str("places its central directory at [", cd_offset, ", +", cd_size, ")"),
           str("needs it inside the file's ", bytes.size(), " bytes"));
  if (count > cd_size / 46) r.fail(str("claims ", count, " members in a directory of ", cd_size, " bytes"), "needs 46 bytes per member");

  std::vector<zip_member> members;
  members.reserve(std::size_t(count));
  std::set<std::string, std::less<>> names;
  byte_reader cd(bytes.subspan(std::size_t(cd_offset), std::size_t(cd_size)), function, file.name());
  for (std::uint64_t k = 0; k < count; ++k) {
    if (cd.read<std::uint32_t>("a directory entry") != zip_central_signature)
      cd.fail(str("has a broken directory entry ", k), "needs the central-directory signature");
    cd.take(4, "a directory entry");
    const auto flags = cd.read<std::uint16_t>("a directory entry");
    zip_member m;
    m.method = cd.read<std::uint16_t>("a directory entry");
    cd.take(4, "a directory entry");
    m.crc32 = cd.read<std::uint32_t>("a directory entry");
    m.compressed_size = cd.read<std::uint32_t>("a directory entry");
    m.size = cd.read<std::uint32_t>("a directory entry");
    const auto name_length = cd.read<std::uint16_t>("a directory entry");
    const auto extra_length = cd.read<std::uint16_t>("a directory entry");
    const auto comment_length = cd.read<std::uint16_t>("a directory entry");
    const auto start_disk = cd.read<std::uint16_t>("a directory entry");
    cd.take(6, "a directory entry");
    std::uint64_t local = cd.read<std::uint32_t>("a directory entry");
    m.name = std::string(cd.take_string(name_length, "a member name"));
    byte_reader extra(cd.take(extra_length, "a member's extra field"), function, file.name());
    cd.take(comment_length, "a member comment");
    while (extra.remaining() >= 4) {  // zip64 sizes replace the fields that read 0xffffffff
      const auto id = extra.read<std::uint16_t>("an extra field");
      const auto length = extra.read<std::uint16_t>("an extra field");
      byte_reader field(extra.take(length, "an extra field"), function, file.name());
      if (id != 1) continue;
      if (m.size == 0xffffffff) m.size = field.read<std::uint64_t>("the zip64 field");
      if (m.compressed_size == 0xffffffff) m.compressed_size = field.read<std::uint64_t>("the zip64 field");
      if (local == 0xffffffff) local = field.read<std::uint64_t>("the zip64 field");
    }
    if (flags & 1) cd.fail(str("has the encrypted member '", m.name, "'"), "needs unencrypted members");
    if (start_disk != 0 && start_disk != 0xffff) cd.fail(str("has member '", m.name, "' on another disk"), "needs a single-file archive");
    if (m.method != 0 && m.method != 8)
      cd.fail(str("has member '", m.name, "' compressed with method ", m.method), "needs stored (0) or deflated (8)");
    if (m.method == 0 && m.size != m.compressed_size)
      cd.fail(str("has the stored member '", m.name, "' with sizes ", m.size, " and ", m.compressed_size), "needs them equal");
    if (m.method == 8 && m.size / zip_max_ratio > m.compressed_size + 1)
      cd.fail(str("claims member '", m.name, "' inflates from ", m.compressed_size, " to ", m.size, " bytes"),
              "needs a ratio deflate can reach (at most 1032)");
    if (!names.insert(m.name).second) cd.fail(str("holds the member '", m.name, "' twice"), "needs unique names");
    // The local header repeats the name and has its own extra field; the data follows it.
    r.seek(local, "a member's local header");
    if (r.read<std::uint32_t>("a local header") != zip_local_signature)
      r.fail(str("has no local header for '", m.name, "' at offset ", local), "needs the offset the directory gives");
    r.take(22, "a local header");
    const auto local_name = r.read<std::uint16_t>("a local header");
    const auto local_extra = r.read<std::uint16_t>("a local header");
    r.take(std::uint64_t(local_name) + local_extra, "a local header");
    m.data_offset = r.position();
    r.need(m.compressed_size, "a member's data");
    members.push_back(std::move(m));
  }
  return members;
}

template <class C>
std::vector<std::byte> zip_core<C>::inflate(const mapped_file& file, const zip_member& m, const char* function,
                                            std::uint64_t limit) {
  const std::uint64_t want = std::min(m.size, limit);
  std::vector<std::byte> out(static_cast<std::size_t>(want));
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) format_fail(function, file.name(), "could not start zlib", "needs memory");
  const std::byte* in = file.bytes().data() + m.data_offset;
  std::uint64_t in_left = m.compressed_size, produced = 0;
  int status = Z_OK;
  while (status == Z_OK && produced < want) {
    const auto in_chunk = std::min<std::uint64_t>(in_left, 1u << 30);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in));
    z.avail_in = uInt(in_chunk);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    z.avail_out = uInt(std::min<std::uint64_t>(want - produced, 1u << 30));
    const auto out_before = z.avail_out;
    status = ::inflate(&z, Z_NO_FLUSH);
    const std::uint64_t used = in_chunk - z.avail_in;
    in += used;
    in_left -= used;
    produced += out_before - z.avail_out;
    if (status == Z_BUF_ERROR && in_left > 0 && produced < want) status = Z_OK;  // more input to give
  }
  inflateEnd(&z);
  if (produced < want || (status != Z_OK && status != Z_STREAM_END))
    format_fail(function, file.name(), str("has member '", m.name, "' whose deflate stream is broken after ", produced, " bytes"),
                str("needs ", m.size, " bytes of valid deflate data"));
  if (want == m.size) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (std::uint64_t done = 0; done < want; done += 1u << 30)
      crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + done), uInt(std::min<std::uint64_t>(want - done, 1u << 30)));
    if (crc != m.crc32)
      format_fail(function, file.name(), str("has member '", m.name, "' whose CRC-32 does not match"), "needs intact data");
  }
  return out;
}
#endif  // MINT_CORE_BODIES

/// npz_file (C is always char, as for zip_core).
template <class C>
class basic_npz_file {
public:
  /// Opens (memory-maps) the archive and checks its directory.
  explicit basic_npz_file(const std::string& path) : basic_npz_file(mapped_file::open(path)) {}
  explicit basic_npz_file(file_ptr file);

  /// Array names in archive order.
  const std::vector<std::string>& names() const noexcept { return names_; }
  bool contains(std::string_view name) const { return members_.find(name) != members_.end(); }
  /// The zip record of an array.
  const zip_member& member(std::string_view name) const { return find(name, "mint::npz_file::member"); }

  /// The .npy header of an array (a deflated member is inflated as far as its header).
  npy_header header(std::string_view name) const;

  /// Reads an array (inflating a deflated member; CRC checked there).
  template <element T>
  ndarray<T> read(std::string_view name, const read_options& options = {}) const {
    constexpr const char* function = "mint::npz_file::read";
    const zip_member& m = find(name, function);
    if (m.method == 0) {
      const npy_header h = npy_core<C>::parse(file_->bytes(), m.data_offset, m.size, function, file_->name());
      return read_elements<T>(*file_, h.data_offset, h.type, h.byte_order, h.shape, h.fortran_order, options, function,
                              str("member '", m.name, "' "));
    }
    const auto inflated = mapped_file::from_bytes(file_->name(), zip_core<C>::inflate(*file_, m, function));
    const npy_header h = npy_core<C>::parse(inflated->bytes(), 0, inflated->size(), function, file_->name());
    return read_elements<T>(*inflated, h.data_offset, h.type, h.byte_order, h.shape, h.fortran_order, options, function,
                            str("member '", m.name, "' "));
  }

  /// Maps a stored member without a copy (its dtype must be T's, native order, aligned).
  template <element T>
  mapped_array<T> map(std::string_view name) const {
    constexpr const char* function = "mint::npz_file::map";
    const zip_member& m = find(name, function);
    if (m.method != 0)
      format_fail(function, file_->name(), str("has member '", m.name, "' deflated"),
                  "needs a stored member (np.savez, not savez_compressed) to be mapped; read() it instead");
    const npy_header h = npy_core<C>::parse(file_->bytes(), m.data_offset, m.size, function, file_->name());
    return map_elements<T>(file_, h.data_offset, h.type, h.byte_order, h.shape, npy_strides(h), function,
                           str("member '", m.name, "' "));
  }

  const file_ptr& file() const noexcept { return file_; }

private:
  const zip_member& find(std::string_view name, const char* function) const;

  file_ptr file_;
  std::vector<std::string> names_;
  std::map<std::string, zip_member, std::less<>> members_;
};

#if MINT_CORE_BODIES
template <class C>
basic_npz_file<C>::basic_npz_file(file_ptr file) : file_(std::move(file)) {
  for (auto& m : zip_core<C>::directory(*file_, "mint::npz_file")) {
    std::string name = m.name.size() > 4 && m.name.ends_with(".npy") ? m.name.substr(0, m.name.size() - 4) : m.name;
    names_.push_back(name);
    members_.emplace(std::move(name), std::move(m));
  }
}

template <class C>
npy_header basic_npz_file<C>::header(std::string_view name) const {
  constexpr const char* function = "mint::npz_file::header";
  const zip_member& m = find(name, function);
  if (m.method == 0) return npy_core<C>::parse(file_->bytes(), m.data_offset, m.size, function, file_->name());
  const auto head = zip_core<C>::inflate(*file_, m, function, std::min<std::uint64_t>(m.size, 12 + npy_max_header_bytes));
  npy_header h = npy_core<C>::parse(head, 0, head.size(), function, file_->name());
  // Only the header was inflated: check the data size against the member's instead.
  if (h.data_offset + h.data_bytes > m.size)
    format_fail(function, file_->name(), str("has member '", m.name, "' shorter than its header says"), "needs the whole array");
  return h;
}

template <class C>
const zip_member& basic_npz_file<C>::find(std::string_view name, const char* function) const {
  const auto it = members_.find(name);
  if (it == members_.end())
    throw argument_error(function, "name", str("'", name, "' is not in ", file_->name()),
                         str("needs one of its ", names_.size(), " arrays"));
  return it->second;
}
#endif  // MINT_CORE_BODIES

/// npz_writer (C is always char, as for zip_core).
template <class C>
class basic_npz_writer {
public:
  explicit basic_npz_writer(const std::string& path) : out_(path) {}

  /// Appends an array under `name` (".npy" is added, as np.savez does).
  void add(const std::string& name, const array_ref& array);

  /// Writes the central directory and renames the archive into place.
  void commit();

private:
  struct entry {
    std::string name;
    std::uint64_t offset;
    std::uint64_t size;
    std::uint32_t crc;
  };
  atomic_file out_;
  std::vector<entry> entries_;
};

#if MINT_CORE_BODIES
template <class C>
void basic_npz_writer<C>::add(const std::string& name, const array_ref& array) {
  constexpr const char* function = "mint::npz_writer::add";
  check_writable(array, function);
  if (name.empty() || name.size() > 60000) throw argument_error(function, "name", str("has ", name.size(), " bytes"), "needs 1 to 60000");
  const std::string member = name + ".npy";
  for (const auto& e : entries_)
    if (e.name == member) throw argument_error(function, "name", str("'", name, "' was added already"), "needs unique names");
  const bool fortran = array.shape.size() > 1 && !array.is_c_contiguous() && array.is_fortran_contiguous();
  const std::string preamble = npy_core<C>::preamble(array, fortran);
  entry e{member, out_.size(), preamble.size() + std::uint64_t(array.size()) * dtype_size(array.type), 0};
  uLong crc = crc32(0L, Z_NULL, 0);
  auto crc_of = [&](const void* p, std::size_t n) {
    for (std::size_t done = 0; done < n; done += 1u << 30)
      crc = crc32(crc, static_cast<const Bytef*>(p) + done, uInt(std::min<std::size_t>(n - done, 1u << 30)));
  };
  crc_of(preamble.data(), preamble.size());
  for_each_chunk(array, fortran, crc_of);
  e.crc = std::uint32_t(crc);

  const bool big = e.size >= 0xffffffffu;
  std::string header;
  append_le(header, zip_local_signature);
  append_le(header, std::uint16_t(big ? 45 : 20));
  append_le(header, std::uint16_t(0));  // flags
  append_le(header, std::uint16_t(0));  // stored
  append_le(header, std::uint16_t(0));  // time 00:00
  append_le(header, std::uint16_t(0x21));  // date 1980-01-01: the same bytes on every run
  append_le(header, e.crc);
  append_le(header, std::uint32_t(big ? 0xffffffffu : e.size));
  append_le(header, std::uint32_t(big ? 0xffffffffu : e.size));
  std::string extra;
  if (big) {
    append_le(extra, std::uint16_t(1));
    append_le(extra, std::uint16_t(16));
    append_le(extra, e.size);
    append_le(extra, e.size);
  }
  // Pad so the array's data lands on a multiple of 64 bytes, and can be mapped.
  std::uint64_t pad = (64 - (e.offset + 30 + member.size() + extra.size()) % 64) % 64;
  if (pad > 0 && pad < 4) pad += 64;
  if (pad > 0) {
    append_le(extra, std::uint16_t(0xd935));  // an alignment record, as Android's zipalign writes
    append_le(extra, std::uint16_t(pad - 4));
    extra.append(std::size_t(pad - 4), '\0');
  }
  append_le(header, std::uint16_t(member.size()));
  append_le(header, std::uint16_t(extra.size()));
  out_.write(header);
  out_.write(member);
  out_.write(extra);
  out_.write(preamble);
  for_each_chunk(array, fortran, [&](const void* p, std::size_t n) { out_.write(p, n); });
  entries_.push_back(std::move(e));
}

template <class C>
void basic_npz_writer<C>::commit() {
  const std::uint64_t cd_offset = out_.size();
  for (const auto& e : entries_) {
    const bool big_size = e.size >= 0xffffffffu, big_offset = e.offset >= 0xffffffffu;
    std::string extra;
    if (big_size || big_offset) {
      append_le(extra, std::uint16_t(1));
      append_le(extra, std::uint16_t((big_size ? 16 : 0) + (big_offset ? 8 : 0)));
      if (big_size) {
        append_le(extra, e.size);
        append_le(extra, e.size);
      }
      if (big_offset) append_le(extra, e.offset);
    }
    std::string h;
    append_le(h, zip_central_signature);
    append_le(h, std::uint16_t(big_size || big_offset ? 45 : 20));  // made by
    append_le(h, std::uint16_t(big_size || big_offset ? 45 : 20));  // needed
    append_le(h, std::uint16_t(0));
    append_le(h, std::uint16_t(0));
    append_le(h, std::uint16_t(0));
    append_le(h, std::uint16_t(0x21));
    append_le(h, e.crc);
    append_le(h, std::uint32_t(big_size ? 0xffffffffu : e.size));
    append_le(h, std::uint32_t(big_size ? 0xffffffffu : e.size));
    append_le(h, std::uint16_t(e.name.size()));
    append_le(h, std::uint16_t(extra.size()));
    append_le(h, std::uint16_t(0));  // comment
    append_le(h, std::uint16_t(0));  // disk
    append_le(h, std::uint16_t(0));  // internal attributes
    append_le(h, std::uint32_t(0644u << 16));  // external: a regular file, rw-r--r--
    append_le(h, std::uint32_t(big_offset ? 0xffffffffu : e.offset));
    out_.write(h);
    out_.write(e.name);
    out_.write(extra);
  }
  const std::uint64_t cd_size = out_.size() - cd_offset, count = entries_.size();
  const bool zip64 = count >= 0xffff || cd_offset >= 0xffffffffu || cd_size >= 0xffffffffu;
  std::string end;
  if (zip64) {
    const std::uint64_t z64 = out_.size();
    append_le(end, zip64_end_signature);
    append_le(end, std::uint64_t(44));
    append_le(end, std::uint16_t(45));
    append_le(end, std::uint16_t(45));
    append_le(end, std::uint32_t(0));
    append_le(end, std::uint32_t(0));
    append_le(end, count);
    append_le(end, count);
    append_le(end, cd_size);
    append_le(end, cd_offset);
    append_le(end, zip64_locator_signature);
    append_le(end, std::uint32_t(0));
    append_le(end, z64);
    append_le(end, std::uint32_t(1));
  }
  append_le(end, zip_end_signature);
  append_le(end, std::uint16_t(0));
  append_le(end, std::uint16_t(0));
  append_le(end, std::uint16_t(zip64 ? 0xffff : count));
  append_le(end, std::uint16_t(zip64 ? 0xffff : count));
  append_le(end, std::uint32_t(zip64 ? 0xffffffffu : cd_size));
  append_le(end, std::uint32_t(zip64 ? 0xffffffffu : cd_offset));
  append_le(end, std::uint16_t(0));
  out_.write(end);
  out_.commit();
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// An .npz archive opened for reading: its member arrays by name (without ".npy").
using npz_file = detail::basic_npz_file<char>;

/// Reads every array of an .npz archive, converted as `options` allow.
template <element T>
std::map<std::string, ndarray<T>> read_npz(const std::string& path, const read_options& options = {}) {
  const npz_file archive(path);
  std::map<std::string, ndarray<T>> out;
  for (const auto& name : archive.names()) out.emplace(name, archive.read<T>(name, options));
  return out;
}

/// Writes an .npz archive member by member (stored, as np.savez does); commit() puts it in place.
/// A writer destroyed before commit() leaves any previous file untouched.
using npz_writer = detail::basic_npz_writer<char>;

/// Writes named arrays as an .npz archive (stored members), atomically.
template <class C = char>  // a template only so units that never write one compile nothing of it
void write_npz(const std::string& path, const std::vector<std::pair<std::string, array_ref>>& arrays) {
  detail::basic_npz_writer<C> out(path);
  for (const auto& [name, array] : arrays) out.add(name, array);
  out.commit();
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_NPZ(CORE)                   \
  CORE(struct mint::detail::zip_core<char>)      \
  CORE(class mint::detail::basic_npz_file<char>) \
  CORE(class mint::detail::basic_npz_writer<char>)
MINT_CORES_IO_NPZ(MINT_CORE)
