#include "app.hpp"

int main(int argc, char** argv) {
  return certmgr::runApp(argc, argv);
}
