"""A fixed, built-in English reference text for fitting the embedding-projection axes (see ``projection``).

A few hundred tokens of varied everyday, science and narrative sentences, written for this project. It
deliberately uses several ambiguous words in two senses each ("bank" of a river / a bank for money, "bat",
"spring", "cell", "light") so that the axes of later layers have seen context-dependent meanings.
Changing this text changes the fitted axes: the cache key includes a hash of it.
"""

from __future__ import annotations

import hashlib

REFERENCE_TEXTS: tuple[str, ...] = (
    "The cat sat on the mat and watched the birds outside the window. A dog barked somewhere down the street.",
    "We walked along the bank of the river, where the water was slow and green. Ducks rested on the muddy bank.",
    "She went to the bank to open a savings account. The bank charged a small fee for every transfer of money.",
    "After the flood, the river burst its banks and the fields were under water for a week.",
    "He borrowed money from the bank to buy a house, and now he pays back the loan every month.",
    "A cell is the smallest unit of life. Each cell is surrounded by a membrane and contains DNA.",
    "The prisoner spent ten years in a small cell with a single window and a hard bed.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaves of plants.",
    "The box was so light that a child could carry it. Turn on the light, it is getting dark.",
    "In spring the trees grow new leaves and the days become longer and warmer.",
    "The old sofa had a broken spring that poked through the cushion.",
    "The bat flew out of the cave at dusk to hunt insects. He swung the bat and hit the ball over the fence.",
    "Paris is the capital of France. Berlin is the capital of Germany, and Rome is the capital of Italy.",
    "Two plus three equals five. The answer to question 4 is 17, and the total cost was 250 dollars.",
    "Enzymes speed up chemical reactions in the body without being used up themselves.",
    "The doctor said that the patient should drink more water and get plenty of sleep.",
    "Yesterday I cooked pasta with tomatoes, garlic and fresh basil, then we ate dinner in the garden.",
    "The train to London leaves at nine o'clock, so we need to be at the station by half past eight.",
    "Once upon a time, a young girl lived in a small house at the edge of a dark forest.",
    "The students asked the teacher why the sky is blue, and she explained how sunlight scatters in the air.",
    "If it rains tomorrow, the football match will be cancelled and moved to next Saturday.",
    "Genes are made of DNA, and they carry the instructions that tell cells how to build proteins.",
    "The computer program reads a file, counts the words, and prints the result on the screen.",
    "My brother plays the guitar, my sister sings, and I play the piano badly.",
    "The mountain was covered in snow, and the climbers waited for the storm to pass.",
)

# The same text as one string; the engine analyses each entry separately (each starts fresh).
REFERENCE_HASH = hashlib.sha256("\n".join(REFERENCE_TEXTS).encode("utf-8")).hexdigest()[:16]
