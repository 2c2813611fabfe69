# Compile a BPF C file with clang and wrap it in a bpftool skeleton.
#   bpf_object(NAME SOURCE) -> interface target NAME_skel whose include
#   directory holds NAME.skel.h (the object is embedded in the header).
# CO-RE: vmlinux.h comes from the build host's BTF, relocations are resolved
# against the target kernel's BTF at load time.

find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
set(BPF_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "BTF used to generate vmlinux.h")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_TARGET_ARCH arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "ppc64le")
  set(BPF_TARGET_ARCH powerpc)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "s390x")
  set(BPF_TARGET_ARCH s390)
else()
  set(BPF_TARGET_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

set(BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${BPF_GEN_DIR})

add_custom_command(
  OUTPUT ${BPF_GEN_DIR}/vmlinux.h
  COMMAND ${BPFTOOL} btf dump file ${BPF_VMLINUX_BTF} format c > ${BPF_GEN_DIR}/vmlinux.h.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${BPF_GEN_DIR}/vmlinux.h.tmp ${BPF_GEN_DIR}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${BPF_VMLINUX_BTF}"
  VERBATIM)

function(bpf_object name source)
  get_filename_component(src ${source} ABSOLUTE)
  get_filename_component(srcdir ${src} DIRECTORY)
  set(obj ${BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${BPF_GEN_DIR}/${name}.skel.h)
  # Subdirectories (lib/) too; CONFIGURE_DEPENDS re-globs at build time, so a new header counts.
  file(GLOB_RECURSE headers CONFIGURE_DEPENDS ${srcdir}/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -Wall -Werror -Wno-unused-function
            -I${BPF_GEN_DIR} -I${srcdir} -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${headers} ${BPF_GEN_DIR}/vmlinux.h
    COMMENT "Compiling BPF object ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "Generating BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${BPF_GEN_DIR} ${srcdir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
