# SPDX-License-Identifier: MIT
# vp_install_pkgconfig: install a pkg-config file whose prefix is the one
# `cmake --install` installs to, not the one the build was configured with.

# vp_install_pkgconfig(<template>) -- install <template> (NAME.pc.in) as
# <libdir>/pkgconfig/NAME.pc.
#
# The template is filled in two passes. At configure time every @VAR@ is
# replaced (PROJECT_VERSION, ...), except @CMAKE_INSTALL_PREFIX@, which is
# kept; these two are provided as well:
#   @VP_PC_LIBDIR@      ${prefix}/<CMAKE_INSTALL_LIBDIR>, or that directory
#                       itself when it is absolute
#   @VP_PC_INCLUDEDIR@  the same for CMAKE_INSTALL_INCLUDEDIR
# At install time @CMAKE_INSTALL_PREFIX@ becomes the prefix being installed
# to (`--prefix P`, else the configured one) and file(INSTALL) copies the
# result, so DESTDIR applies as for every other file. The file is filled in
# a folder of the build tree named after DESTDIR and prefix, so that two
# installs from one build running at once (the tests do) cannot swap files.
# The libdir is the configured CMAKE_INSTALL_LIBDIR as given, so a multiarch
# lib/x86_64-linux-gnu lands in P/lib/x86_64-linux-gnu/pkgconfig and names
# P/lib/x86_64-linux-gnu: the prefix is written out, never derived from the
# file's own location (${pcfiledir}/../.. would be wrong there).
# The build tree also gets NAME.pc with the configured prefix (setup.py of
# the Python binding reads its Version and Libs.private).
function(vp_install_pkgconfig template)
  get_filename_component(name "${template}" NAME)
  string(REGEX REPLACE "\\.in$" "" name "${name}")
  foreach(d LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
      set(VP_PC_${d} "${CMAKE_INSTALL_${d}}")
    else()
      set(VP_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
    endif()
  endforeach()
  set(stage "${PROJECT_BINARY_DIR}/pkgconfig/${name}.in")
  configure_file("${template}" "${PROJECT_BINARY_DIR}/${name}" @ONLY)
  # Pass 1 (configure time); the prefix placeholder stands for itself.
  set(CMAKE_INSTALL_PREFIX "@CMAKE_INSTALL_PREFIX@")
  configure_file("${template}" "${stage}" @ONLY)
  # Pass 2 (install time), CMAKE_INSTALL_PREFIX being the install's.
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(dest "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  else()
    set(dest "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  endif()
  install(CODE "
    string(MD5 vp_pc_key \"\$ENV{DESTDIR}|\${CMAKE_INSTALL_PREFIX}\")
    set(vp_pc_out \"${PROJECT_BINARY_DIR}/pkgconfig/\${vp_pc_key}/${name}\")
    configure_file(\"${stage}\" \"\${vp_pc_out}\" @ONLY)
    file(INSTALL \"\${vp_pc_out}\" DESTINATION \"${dest}\")")
endfunction()
