/* Name limits shared by every layer: the CLI checks them, the database stores them, the
 * rules and their alert documents quote them. Header only. */
#ifndef SLUICE_NAMES_H
#define SLUICE_NAMES_H

#define SL_SOURCE_NAME_MAX 63 /* a source name: [A-Za-z0-9][A-Za-z0-9._-]* */

#endif
