// Links every header-alone translation unit into one program: a definition
// that is not inline in a header would be defined twice and fail to link.
int main() { return 0; }
