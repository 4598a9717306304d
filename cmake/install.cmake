# Installation of libmuster for outside projects:
#   find_package(muster) + target_link_libraries(app PRIVATE muster::muster)
# or pkg-config --cflags --libs muster; the gRPC channel pool is the separate
# muster::muster_grpc (pkg-config muster_grpc). Also installs musterd and
# musterctl.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# muster_core carries the instance model and JSON codec the SDK is built on,
# muster_etcd and muster_etcd_proto the etcd client of EtcdRegistry; they are
# installed beside libmuster (their headers stay private).
set_target_properties(muster PROPERTIES EXPORT_NAME muster)
set_target_properties(muster_grpc PROPERTIES EXPORT_NAME muster_grpc)
install(TARGETS muster muster_grpc muster_core muster_etcd muster_etcd_proto
  EXPORT muster-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/muster DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS musterd musterctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT muster-targets
  NAMESPACE muster::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/muster)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/muster-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/muster-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/muster)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/muster-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/muster-config.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/muster-config-version.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/muster)

configure_file(${PROJECT_SOURCE_DIR}/cmake/muster.pc.in ${CMAKE_CURRENT_BINARY_DIR}/muster.pc @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/cmake/muster_grpc.pc.in ${CMAKE_CURRENT_BINARY_DIR}/muster_grpc.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/muster.pc ${CMAKE_CURRENT_BINARY_DIR}/muster_grpc.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
