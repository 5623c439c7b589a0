# Packaging.cmake -- CPack settings: `cpack -G DEB` in the build directory
# makes hakmem_<version>_<arch>.deb (tests/deb_package.sh builds and installs
# it). Included from CMakeLists.txt after the install rules.
#
# One package, `hakmem`, rather than libhakmem0 + libhakmem-dev: what people
# install it for (the wrapper, preloading, linking) needs the library, the
# header and the wrapper together, and a split would only pay off in a
# distribution archive, where several sonames must be installable side by
# side. `apt install ./hakmem_*.deb` then means one file.

set(CPACK_PACKAGE_NAME hakmem)
set(CPACK_PACKAGE_VENDOR "The hakmem authors")
set(CPACK_PACKAGE_CONTACT "The hakmem authors <maintainers@users.noreply.r-seed-d672b64d.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "general-purpose malloc replacement (preload or link)")
set(CPACK_PACKAGE_DESCRIPTION
  "hakmem replaces the whole malloc family (malloc, free, calloc, realloc, the
aligned allocators, malloc_usable_size, C++ new/delete through libstdc++) of
any program, with per-thread caches, thread-owned segments and a background
thread that returns idle memory to the system.
This package holds libhakmem.so (the standard names) and libhakmem_api.so (only
the hakmem_ names), their static versions, hakmem.h, the pkg-config and CMake
package files, and the `hakmem COMMAND...` wrapper that runs a program with
libhakmem preloaded.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)            # hakmem_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)       # shlibs file + ldconfig trigger
find_program(HAKMEM_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(HAKMEM_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)           # Depends: libc6 (>= the version used)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS libc6)
endif()
set(CPACK_GENERATOR DEB)
include(CPack)
