# InstallPkgConfig.cmake -- writes hakmem.pc at install time (install(CODE)
# in CMakeLists.txt includes it), so that its prefix is the one the files go
# to: `cmake --install build --prefix P` gives prefix=P whatever the configure
# step said, and pkg-config prints plain paths (-I/P/include -L/P/lib) --
# pkg-config does not normalise `${pcfiledir}/../..`. A tree moved after
# install is found by `pkg-config --define-prefix`, which derives the prefix
# from the .pc file's own place (pkgconf and pkg-config both have it).
#
# Needs HAKMEM_PC_TEMPLATE, PROJECT_VERSION, CMAKE_INSTALL_LIBDIR and
# CMAKE_INSTALL_INCLUDEDIR (set by the install(CODE) that includes it); reads
# CMAKE_INSTALL_PREFIX and DESTDIR as every install rule does.

set(_prefix "${CMAKE_INSTALL_PREFIX}")
if(_prefix STREQUAL "")            # `--prefix /` arrives without its slash
  set(_prefix "/")
elseif(NOT IS_ABSOLUTE "${_prefix}")   # `--prefix rel/dir` is taken from the caller's directory
  cmake_path(ABSOLUTE_PATH _prefix BASE_DIRECTORY "$ENV{PWD}")
endif()
cmake_path(NORMAL_PATH _prefix)
string(REGEX REPLACE "(.)/+$" "\\1" _prefix "${_prefix}")   # no trailing slash: no `//lib`
if(_prefix STREQUAL "/")
  set(HAKMEM_PC_PREFIX "")   # ${prefix}/lib then reads /lib, not //lib
  set(_root "/")
else()
  set(HAKMEM_PC_PREFIX "${_prefix}")
  set(_root "${_prefix}/")
endif()

foreach(_kind LIBDIR INCLUDEDIR)
  set(_dir "${CMAKE_INSTALL_${_kind}}")
  if(IS_ABSOLUTE "${_dir}")
    set(HAKMEM_PC_${_kind} "${_dir}")
    set(_full_${_kind} "${_dir}")
  else()
    set(HAKMEM_PC_${_kind} "\${prefix}/${_dir}")
    set(_full_${_kind} "${_root}${_dir}")
  endif()
endforeach()

set(_pc "$ENV{DESTDIR}${_full_LIBDIR}/pkgconfig/hakmem.pc")
message(STATUS "Installing: ${_pc}")
configure_file("${HAKMEM_PC_TEMPLATE}" "${_pc}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_pc}")   # as file(INSTALL) records it
