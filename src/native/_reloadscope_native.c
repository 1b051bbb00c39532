/* The agent's optional native helper (stub: the real functions come next). */
#define Py_LIMITED_API 0x030A0000
#include <Python.h>

static PyMethodDef methods[] = {{NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_reloadscope_native", NULL, 0, methods,
};

PyMODINIT_FUNC PyInit__reloadscope_native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "ABI", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
