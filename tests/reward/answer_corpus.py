"""Answer strings for the differential test of the in-process shortcut against math-verify.

Every answer is paired with every other one (both ways round), and wherever the shortcut gives a verdict it
must be math-verify's. The shapes are the ones the shortcut looks at (integers, decimals, fractions, choice
letters, the spellings its normalisation touches) and their near misses: thousands separators, LaTeX spacing
commands, percent with and without spaces, intervals, sets, tuples, units, ``\\text{}``, degrees, equations.
"""

INTEGERS = [
    "0", "1", "2", "3", "5", "7", "-7", "- 7", "-  7", "07", "007", "+7", "10", "12", "20", "30", "42", "43",
    "100", "349", "1000", "32349", "123456789", "-0", " 7 ", "$7$", "$ 7 $", "$$7$$", "7\\!", "\\!7",
    "\\displaystyle 7", "7~", "{7}", "7.", "\\mathbf{7}", "\\text{7}", "7\\;", "7}", "{7", "--7", "−7", "٣", "３",
    "²", "10^{3}", "1e3",
]  # fmt: skip

THOUSANDS = [
    "1,000", "1, 000", "1{,}000", "1\\,000", "1\\!000", "1 000", "1\\ 000", "1,000,000", "1000000",
    "32,349", "32, 349", "32,\\! 349", "32,\\!349", "32{,}349", "32\\,349", "32\\;349", "32 349", "32\\!349",
]  # fmt: skip

DECIMALS = [
    "0.5", ".5", "-.5", "-0.5", "0.50", "00.5", "2.5", "2.50", "2.4", "3.0", "3.00", "3.14159", "3.141593",
    "1.0000001", "1.000001", "0.333333", "0.3333333", "0.3333", "0.2", "1.2", "12.0", "- 0.5", "0 .5", "0. 5",
    "0.1 + 0.2", "2.718282", "1e3", "1.5e-3", "0,5",
]  # fmt: skip

FRACTIONS = [
    "\\frac{1}{2}", "\\dfrac{1}{2}", "\\tfrac{1}{2}", "\\cfrac{1}{2}", "\\frac12", "\\frac 12", "\\frac{ 1 }{ 2 }",
    "1/2", "1 / 2", "2/4", "\\frac{1}{2", "1/2/3", "1//2", "1/-2", "\\frac{2}{4}", "-\\frac{1}{2}", "\\frac{-1}{2}",
    "\\frac{1}{-2}", "- \\frac{1}{2}",
    "-1/2", "\\frac{1}{3}", "\\frac{3}{4}", "3/4", "\\frac{4}{3}", "\\frac{1}{0}", "0/1", "\\frac{0}{5}",
    "\\left(\\frac{1}{2}\\right)", "\\displaystyle\\frac{1}{2}", "\\frac{1}{2}\\!", "\\frac{10}{2}", "10/2",
    "\\frac{1}{5}", "\\frac{\\pi}{6}",
]  # fmt: skip

PERCENT = [
    "20\\%", "20 \\%", "20%", "20 %", "20\\ \\%", "20\\,\\%", "20\\!\\%", "20 percent", "20\\text{ percent}",
    "50\\%", "0.2\\%",
]  # fmt: skip

INTERVALS_SETS_TUPLES = [
    "(1, 3]", "(1,3]", "\\left(1, 3\\right]", "\\left( 1, 3 \\right]", "[1, 3]", "(1, 3)", "(-\\infty, 2)",
    "(-\\infty,2)", "\\{1, 2\\}", "\\{2, 1\\}", "\\{1,2\\}", "\\left\\{1, 2\\right\\}", "1, 2", "1,2", "2,1",
    "2, 1", "1,\\!2", "1;2", "1 and 2", "(1, 2)", "(2, 1)", "(1,2)", "\\left(1,2\\right)", "\\left(1, 2\\right)",
    "(2,2),(6,2)", "(2, 2),(6, 2)", "(6,2),(2,2)", "[1,2) \\cup (3,4]", "\\emptyset", "\\varnothing",
]  # fmt: skip

UNITS_TEXT_DEGREES = [
    "5 \\text{ cm}", "5\\text{cm}", "5\\text{ cm}", "5 cm", "5\\,\\text{cm}", "5 \\mathrm{cm}", "10 \\text{ meters}",
    "\\$5", "5\\$", "\\text{Tuesday}", "\\text{tuesday}", "Tuesday", "\\text{ Tuesday }", "\\text{}",
    "\\text{(A)}", "\\text{ (A) }", "30^\\circ", "30^{\\circ}", "30 ^\\circ", "30°", "30^\\circ\\text{C}",
    "30 \\text{ degrees}", "60^\\circ", "x = 3", "x=3", "y = 3", "x = -7", "3 = x", "x^2", "x^{2}", "2\\sqrt{3}",
    "\\sqrt{12}", "2\\sqrt3", "\\infty", "-\\infty", "\\pi", "e", "i", "\\sqrt{-1}", "\\text{None}",
    "\\text{no solution}", "\\left|x\\right|", "|x|", "\\left[1, 2\\right]",
]  # fmt: skip

CHOICES = [
    "A", "B", "C", "D", "E", "a", "b", "c", "d", "e", "(A)", "(B)", "( B )", "(b)", "\\text{B}", "\\text{b}",
    "\\textbf{B}", "\\textbf{(B)}", "\\mathrm{B}", "\\mathbf{B}", "\\text{ B }", "B.", "B)", "(B", "\\text{(B)}",
    "I", "i", "O", "S", "N", "Q", "Z", "F", "G", "H", "T", "x", "y", "\\mathrm{T}", "\\text{B", "B}", "{B}",
    "\\text{B}}", "(B))", "((B))", "\\text{\\text{B}}", "\\text{A}, \\text{B}", "A, B", "AB", "Ａ",
]  # fmt: skip

CORPUS = INTEGERS + THOUSANDS + DECIMALS + FRACTIONS + PERCENT + INTERVALS_SETS_TUPLES + UNITS_TEXT_DEGREES + CHOICES
